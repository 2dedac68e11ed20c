package main

import (
	"errors"
	"path/filepath"

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
