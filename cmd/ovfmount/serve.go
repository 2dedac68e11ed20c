package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/ovfmount/ovfmount/appliance"
	"github.com/ovfmount/ovfmount/fs"
	"github.com/ovfmount/ovfmount/internal/offheap"
	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/remote"
	"github.com/ovfmount/ovfmount/vdisk"
)

// serve mounts the archive and serves it until it is unmounted, or until
// SIGINT or SIGTERM unmounts it.
func serve(cfg *mountConfig) error {
	// Catch signals before the mount exists: one that arrived between the
	// mount appearing and the handler being installed would kill us with
	// the mount left behind, stale.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	signal.Ignore(syscall.SIGHUP)
	defer signal.Stop(sigs)

	log, sink, err := newLogger(cfg)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if cfg.cpuProfile != "" {
		stop, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			return fail(exitUsage, "--cpu-profile: %v", err)
		}
		defer stop()
	}
	var detached zerolog.LevelWriter
	var logDest string
	if cfg.notifyFD > 0 {
		// A background mount opens its log first, so a bad path fails the
		// mount instead of leaving one that logs nowhere, and the log
		// holds everything from the start. The terminal gets only
		// warnings and errors.
		if detached, logDest, err = detachedWriter(cfg); err != nil {
			return fail(exitUsage, "%v", err)
		}
		sink.onlyProblems()
		sink.tee(detached)
	}
	mode, err := verifyMode(cfg.mode)
	if err != nil {
		return err
	}
	// The audit log is opened before the archive is read and closed after
	// the unmount (or on any failure before it): see auditlog.go.
	alog, err := openAuditLog(cfg)
	if err != nil {
		return err
	}
	auditClosed := false
	defer func() {
		if !auditClosed {
			closeAudit(alog, log)
		}
	}()
	uid, gid := os.Getuid(), os.Getgid()
	if cfg.uid >= 0 {
		uid = cfg.uid
	}
	if cfg.gid >= 0 {
		gid = cfg.gid
	}
	cache := vdisk.NewCache(cfg.cacheSize, 0)
	defer cache.Close()
	w := openWith{mode: mode, useTables: true, buildGzip: true, cache: cache,
		onEvent: func(e integrity.Event) { logEvent(log, e) }, log: log, logInside: true}
	srcs, library, err := expandSources(cfg.archives, &cfg.verify)
	if err != nil {
		return err
	}
	var tree served
	if library {
		if cfg.overlay != "" {
			return fail(exitUsage, "--overlay: an overlay is bound to one archive; a library mount of %d archives takes none", len(srcs))
		}
		tree = serveLibrary(cfg.archives, srcs, &cfg.verify, w, log)
	} else {
		pkg, rf, err := openInterruptibly(cfg, w, sigs)
		if err != nil {
			return err
		}
		tree = served{entries: pkg.Entries, name: pkg.Name, size: pkg.Archive.Size(),
			signature: pkg.Checks.Signature().String(), pkg: pkg,
			close: func() {
				pkg.Close()
				if rf != nil {
					rf.Close()
				}
			}}
	}
	defer tree.close()
	mnt, err := checkMountpoint(cfg.mountpoint, cfg.nonempty)
	if err != nil {
		return err
	}
	if tree.pkg != nil {
		logPackage(log, tree.pkg)
		closeOverlay, err := withOverlay(cfg.overlay, tree.pkg, log)
		if err != nil {
			return err
		}
		defer closeOverlay()
	}
	if cfg.overlay != "" {
		// The views' modes then matter: the kernel enforces them, so
		// that allow_other lets other users read, not write, the disks.
		cfg.defaultPermissions = true
	}
	observer, err := startAudit(alog, cfg, tree, mnt, log)
	if err != nil {
		return err
	}
	root := fs.NewRoot(tree.entries, fs.Options{UID: uint32(uid), GID: uint32(gid), Signature: tree.signature,
		Size: tree.size, DirectIO: cfg.directIO, Writable: cfg.overlay != "", Observer: observer, Log: log})
	fsname := cfg.fsname
	if fsname == "" {
		fsname = tree.name
	}
	start := time.Now()
	srv, err := fs.Mount(mnt, root, fs.MountOptions{
		FsName: fsname, AllowOther: cfg.allowOther, DefaultPermissions: cfg.defaultPermissions,
		KernelOptions: cfg.kernelOptions, Debug: cfg.debugFUSE, Log: log,
	})
	if err != nil {
		return fail(exitFUSE, "mounting %s on %s: %v", tree.name, mnt, err)
	}
	ev := log.Info().Str("archive", tree.name).Str("mountpoint", mnt).Int("entries", len(tree.entries))
	if cfg.directIO {
		ev = ev.Bool("directIO", true)
	}
	if alog != nil {
		ev = ev.Str("auditLog", cfg.auditLog)
	}
	ev.Dur("took_ms", time.Since(start)).Msg("mounted")

	if cfg.notifyFD > 0 {
		if logDest != "" {
			log.Info().Str("log", logDest).Msg("running in the background")
		}
		if err := notify(cfg.notifyFD, nil); err != nil {
			srv.Unmount()
			return fail(exitDaemon, "reporting readiness: %v", err)
		}
		sink.set(detached)
		detachStdio()
	}
	tuneGC()
	waitForUnmount(srv, mnt, sigs, log)
	closeAudit(alog, log)
	auditClosed = true
	hits, misses, decodes := cache.Stats()
	prefixes, finished := cache.PrefixStats()
	log.Info().Str("mountpoint", mnt).Int64("cacheHits", hits).Int64("cacheMisses", misses).Int64("decodes", decodes).
		Int64("headsDecoded", prefixes).Int64("headsFinished", finished).Int64("offHeapBytes", offheap.Mapped()).Msg("unmounted")
	return nil
}

// waitForUnmount returns once the mount is gone. SIGINT and SIGTERM unmount
// it; while it is busy (a shell has its working folder there, a file is
// open) the unmount is retried every second, and a second signal detaches
// it lazily instead, as gocryptfs does.
func waitForUnmount(srv *fs.Server, mnt string, sigs <-chan os.Signal, log zerolog.Logger) {
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	var retry <-chan time.Time
	signalled := 0
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			signalled++
			if signalled > 1 {
				log.Warn().Str("mountpoint", mnt).Msgf("%v again: detaching the busy mount lazily", s)
				lazyUnmount(mnt, log)
				continue
			}
			log.Info().Msgf("%v: unmounting", s)
			if tryUnmount(srv, mnt, log) {
				retry = nil
				continue
			}
			retry = time.Tick(time.Second)
		case <-retry:
			if tryUnmount(srv, mnt, log) {
				retry = nil
			}
		}
	}
}

func tryUnmount(srv *fs.Server, mnt string, log zerolog.Logger) bool {
	err := srv.Unmount()
	if err == nil {
		return true
	}
	log.Warn().Err(err).Str("mountpoint", mnt).Msg("mountpoint busy (close files and leave the folder); retrying every second, or signal again to detach lazily")
	return false
}

// lazyUnmount detaches the mount now and lets the kernel finish it when
// the last user leaves.
func lazyUnmount(mnt string, log zerolog.Logger) {
	err := syscall.Unmount(mnt, syscall.MNT_DETACH)
	if errors.Is(err, syscall.EPERM) {
		err = exec.Command("fusermount3", "-u", "-z", mnt).Run()
	}
	if err != nil {
		log.Error().Err(err).Str("mountpoint", mnt).Msg("lazy unmount failed")
	}
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		// And what is live at the end, with the kernel's nodes still held:
		// where a mount's memory goes.
		if h, err := os.Create(path + ".heap"); err == nil {
			pprof.Lookup("heap").WriteTo(h, 0)
			h.Close()
		}
	}, nil
}

// openInterruptibly opens the package the mount serves. A signal while it
// works (indexing big gzip files takes minutes) stops it; once mounted,
// waitForUnmount handles signals.
func openInterruptibly(cfg *mountConfig, w openWith, sigs <-chan os.Signal) (*appliance.Package, *remote.File, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	finished, watcherDone := make(chan struct{}), make(chan struct{})
	var interrupted os.Signal
	go func() {
		defer close(watcherDone)
		select {
		case interrupted = <-sigs:
			cancel()
		case <-finished:
		}
	}()
	w.ctx = ctx
	pkg, rf, err := openPackage(cfg.archive, &cfg.verify, w)
	close(finished)
	<-watcherDone
	if interrupted != nil {
		if err == nil {
			pkg.Close()
			if rf != nil {
				rf.Close()
			}
		}
		name := interrupted.String()
		if sig, ok := interrupted.(syscall.Signal); ok {
			name = unix.SignalName(sig)
		}
		return nil, nil, fail(exitUsage, "%s: interrupted by %s before the mount was ready; nothing was mounted", shownName(cfg.archive), name)
	}
	return pkg, rf, err
}
