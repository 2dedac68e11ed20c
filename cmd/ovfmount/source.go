package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/remote"
	"github.com/ovfmount/ovfmount/vdisk"
)

// openWith is what a command asks of openPackage beyond the flags.
type openWith struct {
	mode      integrity.Mode
	useTables bool // trust chunk tables of earlier runs (mounts; verify with --trust-cache)
	buildGzip bool // build missing gzip seek indexes (mounts)
	cache     *vdisk.Cache
	onEvent   func(integrity.Event)
	ctx       context.Context
	log       zerolog.Logger
	logInside bool // log what the disks hold when it is found (mounts)
}

// openPackage opens what the user named, an .ova (any name; recognised by
// content) as a file or an http(s) URL, an .ovf descriptor of an unpacked
// package or the folder of one, or a loose disk image, into the package
// model every command shares. Errors carry exit code 2 and name the file
// and the problem.
func openPackage(arg string, v *verify, w openWith) (*appliance.Package, *remote.File, error) {
	opts := appliance.Options{Descriptor: v.descriptor, Cache: w.cache, CacheDir: v.cacheDir, BuildGzip: w.buildGzip,
		Context: w.ctx, Log: w.log, LogInside: w.logInside}
	switch v.diskChain {
	case "on", "":
	case "off":
		opts.NoDiskChain = true
	default:
		return nil, nil, fail(exitUsage, "--disk-chain must be on or off, not %q", v.diskChain)
	}
	iopts, err := v.integrityOptions(w.mode)
	if err != nil {
		return nil, nil, err
	}
	iopts.UseCachedTables = w.useTables
	iopts.OnEvent = w.onEvent
	opts.Integrity = iopts

	if isS3(arg) {
		sopt, err := v.s3Options(w.log)
		if err != nil {
			return nil, nil, err
		}
		f, err := openS3(arg, sopt)
		if err != nil {
			return nil, nil, err
		}
		p, err := appliance.Open(appliance.Input{Name: f.URL(), R: f, Size: f.Size(), Identity: f.Identity(), ModTime: f.ModTime()}, opts)
		if err != nil {
			f.Close()
			return nil, nil, openError(arg, err)
		}
		return p, f, nil
	}
	if isURL(arg) {
		ropt, err := v.net.options(v.cas(), v.cacheDir, w.log)
		if err != nil {
			return nil, nil, err
		}
		f, err := openRemote(arg, ropt)
		if err != nil {
			return nil, nil, err
		}
		p, err := appliance.Open(appliance.Input{Name: f.URL(), R: f, Size: f.Size(), Identity: f.Identity(), ModTime: f.ModTime()}, opts)
		if err != nil {
			f.Close()
			return nil, nil, openError(shownName(arg), err)
		}
		return p, f, nil
	}
	p, err := appliance.OpenPath(arg, opts)
	if err != nil {
		return nil, nil, openError(arg, err)
	}
	return p, nil, nil
}

// openError words a failure to open a package, with exit code 2.
func openError(shown string, err error) error {
	var np *appliance.NotPackageError
	var several *appliance.SeveralDescriptorsError
	var nodesc *appliance.NoSuchDescriptorError
	switch {
	case errors.Is(err, context.Canceled):
		return fail(exitUsage, "%s: interrupted before the package was opened; nothing was mounted", shown)
	case errors.As(err, &np):
		np.Name = shown
		return fail(exitUsage, "%v", np)
	case errors.As(err, &several), errors.As(err, &nodesc):
		return fail(exitUsage, "%s: %v", shown, err)
	}
	return fail(exitUsage, "%s: %s", shown, describeOSError(err))
}

// integrityOptions turns the flags into the checks' options; errors carry
// exit code 2 (usage).
func (v *verify) integrityOptions(mode integrity.Mode) (integrity.Options, error) {
	opts := integrity.Options{Mode: mode, CacheDir: v.cacheDir, RequireTrustedSigner: v.requireTrustedSigner,
		AllowUnlisted: v.allowUnlisted}
	roots, err := v.cas().roots()
	switch {
	case errors.Is(err, errNoPEM):
		return opts, fail(exitUsage, "--ca: %s holds no PEM certificate", v.caFile)
	case err != nil:
		return opts, fail(exitUsage, "--ca: %s", describeOSError(err))
	}
	opts.Roots = roots
	return opts, nil
}

func describeOSError(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), "ova: ")
}
