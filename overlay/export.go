package overlay

import (
	"context"
	"fmt"
	"os"
)

// exportCluster is the unit export reads and skips: QCOW2's cluster.
const exportCluster = 1 << 16

// ExportImage writes the view of d, base plus overlay, to w as a
// standalone image: "raw" (sparse: runs of zeros are holes) or "qcow2"
// (version 3, 64 KiB clusters, no backing file; only clusters holding a
// non-zero byte are stored; a size that is not a multiple of 512 is
// rounded up, because qemu reads the size in 512-byte sectors). base, when not nil, lets export skip the
// base's unstored runs without reading them. w is truncated first and
// synced at the end; it must be a regular file (raw is written out of
// order).
func ExportImage(ctx context.Context, d *Disk, w *os.File, format string, base BaseExtent) error {
	var out interface {
		cluster(off int64, p []byte) error
		finish() error
	}
	switch format {
	case "raw":
		out = &rawWriter{w: w, size: d.size}
	case "qcow2":
		out = newQcowWriter(w, d.size)
	default:
		return fmt.Errorf("overlay: export format %q (want raw or qcow2)", format)
	}
	if err := w.Truncate(0); err != nil {
		return fmt.Errorf("overlay: export: %w", err)
	}
	buf := make([]byte, exportCluster)
	for off := int64(0); off < d.size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, ok, err := d.SeekData(off, base)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		c := next / exportCluster * exportCluster
		p := buf[:min(exportCluster, d.size-c)]
		if err := d.ReadAt(ctx, p, c); err != nil {
			return err
		}
		if !isZero(p) {
			if err := out.cluster(c, p); err != nil {
				return fmt.Errorf("overlay: export %s: %w", d.name, err)
			}
		}
		off = c + int64(len(p))
	}
	if err := out.finish(); err != nil {
		return fmt.Errorf("overlay: export %s: %w", d.name, err)
	}
	if err := w.Sync(); err != nil {
		return fmt.Errorf("overlay: export %s: %w", d.name, err)
	}
	return nil
}

type rawWriter struct {
	w    *os.File
	size int64
}

func (r *rawWriter) cluster(off int64, p []byte) error {
	_, err := r.w.WriteAt(p, off)
	return err
}

func (r *rawWriter) finish() error { return r.w.Truncate(r.size) }
