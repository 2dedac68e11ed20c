package main

import (
	"errors"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/overlay"
)

// openOverlay opens the overlay folder dir for pkg, bound to the package's
// fingerprint, and puts it under the package's views. A folder made for
// another archive, or for this one before it changed, is refused, saying
// which; so is one another process holds.
func openOverlay(dir string, pkg *appliance.Package) (*overlay.Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fail(exitUsage, "--overlay %s: %v", dir, err)
	}
	key, describe := pkg.Fingerprint()
	store, err := overlay.Open(abs, overlay.Identity{Key: key, Name: pkg.Name, Describe: describe})
	switch {
	case errors.Is(err, overlay.ErrOtherArchive), errors.Is(err, overlay.ErrBusy), errors.Is(err, overlay.ErrNotOverlay):
		return nil, fail(exitUsage, "--overlay: %v", err)
	case err != nil:
		return nil, fail(exitUsage, "--overlay %s: %v", abs, err)
	}
	if err := pkg.UseOverlay(store); err != nil {
		store.Close()
		return nil, fail(exitUsage, "--overlay %s: %v", abs, err)
	}
	return store, nil
}

// withOverlay opens the overlay folder dir for pkg, unless dir is "", and
// returns what closes it (which syncs every disk's overlay): the mount
// and serve --nbd both run until a signal, then close it.
func withOverlay(dir string, pkg *appliance.Package, log zerolog.Logger) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	store, err := openOverlay(dir, pkg)
	if err != nil {
		return nil, err
	}
	log.Info().Str("overlay", store.Dir()).Msg("raw views, partitions and logical volumes take writes; they go to the overlay")
	return func() {
		if err := store.Close(); err != nil {
			log.Error().Err(err).Str("overlay", store.Dir()).Msg("closing the overlay")
		}
	}, nil
}
