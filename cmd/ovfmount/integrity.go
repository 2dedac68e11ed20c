package main

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova"
)

// integrityOptions turns the flags into the ova options; errors carry
// exit code 2 (usage).
func (v *verify) integrityOptions(mode ova.VerifyMode, src *source) (ova.IntegrityOptions, error) {
	opts := ova.IntegrityOptions{Mode: mode, CacheDir: v.cacheDir, RequireTrustedSigner: v.requireTrustedSigner,
		AllowUnlisted: v.allowUnlisted}
	roots, err := v.cas().roots()
	switch {
	case errors.Is(err, errNoPEM):
		return opts, fail(exitUsage, "--ca: %s holds no PEM certificate", v.caFile)
	case err != nil:
		return opts, fail(exitUsage, "--ca: %s", describeOSError(err))
	}
	opts.Roots = roots
	opts.Source = src.identity()
	return opts, nil
}

// logEvent logs one verification outcome: this is where they are handled.
func logEvent(log zerolog.Logger, e ova.Event) {
	switch {
	case e.Status == ova.StatusVerified && e.Err != nil:
		log.Warn().Str("file", e.File).Err(e.Err).Msg("verified")
	case e.Status == ova.StatusVerified:
		log.Info().Str("file", e.File).Str("algorithm", e.Algorithm).Str("digest", e.Expected).Bool("fromCache", e.Cached).Msg("verified")
	default:
		ev := log.Error().Str("file", e.File).Str("algorithm", e.Algorithm).Str("expected", e.Expected).Str("actual", e.Actual)
		if e.Chunk >= 0 {
			ev = ev.Int("chunk", e.Chunk).Int64("chunkSize", ova.ChunkSize)
		}
		ev.Err(e.Err).Msg("verification failed: reads of this file fail with EIO")
	}
}

// logIntegrity logs what the manifests and certificate say, at mount.
func logIntegrity(log zerolog.Logger, in *ova.Integrity) {
	sig := in.Signature()
	switch sig.State {
	case "ok":
		log.Info().Str("signer", sig.Signer).Str("chain", sig.Chain).Msg("signature valid")
	case "ok-untrusted":
		log.Warn().Str("signer", sig.Signer).Str("chain", sig.Chain).AnErr("why", sig.Err).Msg("signature valid, but the signer is not trusted")
	case "bad":
		log.Error().Err(sig.Err).Msg("signature invalid")
	}
	for _, w := range in.Warnings() {
		log.Warn().Msg(w)
	}
}

func verifyMode(s string) (ova.VerifyMode, error) {
	m, err := ova.ParseVerifyMode(s)
	if err != nil {
		return 0, fail(exitUsage, "--verify: %v", err)
	}
	return m, nil
}
