package main

import (
	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova/integrity"
)

// logEvent logs one verification outcome: this is where they are handled.
func logEvent(log zerolog.Logger, e integrity.Event) {
	switch {
	case e.Status == integrity.StatusVerified && e.Err != nil:
		log.Warn().Str("file", e.File).Err(e.Err).Msg("verified")
	case e.Status == integrity.StatusVerified:
		log.Info().Str("file", e.File).Str("algorithm", e.Algorithm).Str("digest", e.Expected).Bool("fromCache", e.Cached).Msg("verified")
	default:
		ev := log.Error().Str("file", e.File).Str("algorithm", e.Algorithm).Str("expected", e.Expected).Str("actual", e.Actual)
		if e.Piece >= 0 {
			ev = ev.Int("piece", e.Piece).Int64("pieceSize", integrity.PieceSize)
		}
		ev.Err(e.Err).Msg("verification failed: reads of this file fail with EIO")
	}
}

// logPackage logs, at mount, what the package's signature says and every
// warning the model found, each once.
func logPackage(log zerolog.Logger, p *appliance.Package) {
	sig := p.Checks.Signature()
	switch sig.State {
	case "ok":
		log.Info().Str("signer", sig.Signer).Str("chain", sig.Chain).Msg("signature valid")
	case "ok-untrusted":
		log.Warn().Str("signer", sig.Signer).Str("chain", sig.Chain).AnErr("why", sig.Err).Msg("signature valid, but the signer is not trusted")
	case "bad":
		log.Error().Err(sig.Err).Msg("signature invalid")
	}
	for _, w := range p.Warnings {
		log.Warn().Str("archive", p.Name).Msg(w)
	}
	for _, k := range p.Disks {
		if k.View != "" {
			log.Info().Str("view", k.View).Str("format", k.Format).Int64("size", k.Size).Msg("raw view")
		}
	}
}

func verifyMode(s string) (integrity.Mode, error) {
	m, err := integrity.ParseMode(s)
	if err != nil {
		return 0, fail(exitUsage, "--verify: %v", err)
	}
	return m, nil
}
