package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ovfmount/ovfmount/ova/integrity"
	"github.com/ovfmount/ovfmount/vdisk"
)

// A signal while gzip files are being indexed stops the work, and the
// mount is abandoned with a clear error rather than left half made.
func TestOpenInterrupted(t *testing.T) {
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	line := []byte("a compressible line of an appliance's disk, repeated with a counter 0000\n")
	for i := range 1 << 20 { // 72 MiB: indexing it takes far longer than handling a signal
		line[len(line)-5] = byte('0' + i%10)
		w.Write(line)
	}
	w.Close()
	desc := []byte(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">` +
		`<References><File ovf:id="f1" ovf:href="big.img.gz" ovf:compression="gzip"/></References></Envelope>`)
	path := filepath.Join(t.TempDir(), "app.ova")
	f, _ := os.Create(path)
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "app.ovf", Mode: 0o644, Size: int64(len(desc))})
	tw.Write(desc)
	tw.WriteHeader(&tar.Header{Name: "big.img.gz", Mode: 0o644, Size: int64(gz.Len())})
	tw.Write(gz.Bytes())
	tw.Close()
	f.Close()

	cache := vdisk.NewCache(1<<20, 1)
	defer cache.Close()
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	_, _, err := openInterruptibly(&mountConfig{archive: path}, openWith{mode: integrity.Lazy, buildGzip: true, cache: cache, log: zerolog.Nop()}, sigs)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage {
		t.Fatalf("err %v, want an interruption with exit code %d", err, exitUsage)
	}
	t.Log(err)
}
