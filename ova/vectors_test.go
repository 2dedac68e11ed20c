package ova

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.tar from the generators in vectors_test.go")

// want describes one member an archive must (or must not) have.
type want struct {
	name     string
	typ      Type
	data     string // file contents; checked for files
	linkname string
	missing  bool // the name must not be mounted
	trunc    int64
}

type vector struct {
	file string
	// tarDiffers lists files that GNU tar -x extracts differently, on
	// purpose (see gnutar_test.go).
	tarDiffers []string
	build      func() []byte
	want       []want
	warns      []string // substrings that must appear among the warnings
	err        error    // Open must fail with this
}

var payload = strings.Repeat("0123456789abcdef", 200) // 3200 bytes: crosses blocks

func stdTar(format tar.Format, files ...tar.Header) []byte {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, h := range files {
		h.Format = format
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		data := []byte(nil)
		if h.Typeflag == tar.TypeReg {
			data = []byte(h.Uname) // the contents ride in Uname to keep the table short
			h.Size = int64(len(data))
			h.Uname = "user"
		}
		if err := w.WriteHeader(&h); err != nil {
			panic(err)
		}
		w.Write(data)
	}
	w.Close()
	return buf.Bytes()
}

func reg(name, data string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Uname: data}
}

var longName = strings.Repeat("long-directory-name/", 8) + "disk1.vmdk" // 170 bytes

var vectors = []vector{
	{file: "ustar.tar",
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, reg("appliance.ovf", "<Envelope/>"), reg("appliance.mf", "SHA256(x)= 00"),
				tar.Header{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o750},
				reg("sub/disk1.vmdk", payload), reg("empty", ""),
				reg(strings.Repeat("p", 120)+"/"+strings.Repeat("n", 90), "prefixed"))
		},
		want: []want{{name: "appliance.ovf", data: "<Envelope/>"}, {name: "appliance.mf", data: "SHA256(x)= 00"},
			{name: "sub", typ: TypeDir}, {name: "sub/disk1.vmdk", data: payload}, {name: "empty", data: ""},
			{name: strings.Repeat("p", 120) + "/" + strings.Repeat("n", 90), data: "prefixed"}}},
	{file: "gnu-longnames.tar",
		build: func() []byte {
			return stdTar(tar.FormatGNU, reg(longName, payload),
				tar.Header{Name: "link-" + strings.Repeat("l", 110), Typeflag: tar.TypeSymlink, Linkname: longName})
		},
		want: []want{{name: longName, data: payload},
			{name: "link-" + strings.Repeat("l", 110), typ: TypeSymlink, linkname: longName}}},
	{file: "pax-utf8.tar",
		build: func() []byte {
			return stdTar(tar.FormatPAX, reg("Ünïcødé/диск-1.vmdk", "utf8"), reg(longName, payload),
				tar.Header{Name: "sub/x", Typeflag: tar.TypeReg, Uname: "frac", ModTime: time.Unix(1700000000, 500000000)})
		},
		want: []want{{name: "Ünïcødé/диск-1.vmdk", data: "utf8"}, {name: longName, data: payload}, {name: "sub/x", data: "frac"}}},
	{file: "dot-prefix.tar",
		build: func() []byte {
			return stdTar(tar.FormatGNU, tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
				reg("./appliance.ovf", "ovf"), reg("./disk.vmdk", "disk"))
		},
		want: []want{{name: "appliance.ovf", data: "ovf"}, {name: "disk.vmdk", data: "disk"}}},
	{file: "wrapped.tar",
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, tar.Header{Name: "appliance/", Typeflag: tar.TypeDir, Mode: 0o755},
				reg("appliance/appliance.ovf", "ovf"), reg("appliance/appliance.mf", "mf"), reg("appliance/disk1.vmdk", payload))
		},
		want: []want{{name: "appliance", typ: TypeDir}, {name: "appliance/appliance.ovf", data: "ovf"},
			{name: "appliance/disk1.vmdk", data: payload}}},
	{file: "implied-dirs.tar",
		build: func() []byte { return stdTar(tar.FormatUSTAR, reg("a/b/c/deep.txt", "deep"), reg("a/top.txt", "top")) },
		want: []want{{name: "a", typ: TypeDir}, {name: "a/b", typ: TypeDir}, {name: "a/b/c", typ: TypeDir},
			{name: "a/b/c/deep.txt", data: "deep"}, {name: "a/top.txt", data: "top"}}},
	{file: "out-of-order.tar",
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, reg("disk1.vmdk", payload), reg("appliance.mf", "mf"), reg("appliance.ovf", "ovf"))
		},
		want: []want{{name: "disk1.vmdk", data: payload}, {name: "appliance.mf", data: "mf"}, {name: "appliance.ovf", data: "ovf"}}},
	{file: "duplicates.tar",
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, reg("disk.vmdk", "first copy"), reg("other", "o"), reg("./disk.vmdk", "second copy"))
		},
		want:  []want{{name: "disk.vmdk", data: "second copy"}, {name: "other", data: "o"}},
		warns: []string{"is shadowed: the last one wins"}},
	{file: "hardlink.tar",
		build: func() []byte {
			return stdTar(tar.FormatGNU, reg("target", "original"),
				tar.Header{Name: "link", Typeflag: tar.TypeLink, Linkname: "./target"},
				tar.Header{Name: "dangling", Typeflag: tar.TypeLink, Linkname: "nowhere"},
				reg("target", "replaced"))
		},
		want:  []want{{name: "link", data: "original"}, {name: "target", data: "replaced"}, {name: "dangling", missing: true}},
		warns: []string{"hard link skipped: its target \"nowhere\""}},
	{file: "symlink.tar",
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"},
				tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"},
				tar.Header{Name: "loop", Typeflag: tar.TypeSymlink, Linkname: "loop"})
		},
		want: []want{{name: "up", typ: TypeSymlink, linkname: "../../etc/passwd"},
			{name: "abs", typ: TypeSymlink, linkname: "/etc/shadow"}, {name: "loop", typ: TypeSymlink, linkname: "loop"}}},
	{file: "special.tar",
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
				tar.Header{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8}, tar.Header{Name: "fifo", Typeflag: tar.TypeFifo},
				reg("file", "kept"))
		},
		want:  []want{{name: "file", data: "kept"}, {name: "null", missing: true}, {name: "sda", missing: true}, {name: "fifo", missing: true}},
		warns: []string{"device entry skipped", "FIFO entry skipped"}},
	// GNU tar also refuses the ".." names, and strips the leading "/".
	{file: "unsafe-names.tar",
		build: func() []byte {
			var t rawTar
			t.file("../evil", []byte("e"))
			t.file("/abs/file", []byte("abs"))
			t.file("a/../../b", []byte("b"))
			t.file("ok", []byte("ok"))
			t.header(hdr{name: "/", typ: typeDir})
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "ok", data: "ok"}, {name: "abs/file", data: "abs"}, {name: "evil", missing: true}, {name: "b", missing: true}},
		warns: []string{"not mounted: the name contains \"..\"", "mounted as \"abs/file\": leading \"/\" removed"}},
	// tar cuts the name at the NUL and writes "evil"; ovfmount drops it.
	{file: "nul-name.tar", tarDiffers: []string{"evil"},
		build: func() []byte {
			var t rawTar
			t.pax(typeXHeader, "path", "evil\x00.vmdk")
			t.file("placeholder", []byte("x"))
			t.file("ok", []byte("ok"))
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "ok", data: "ok"}, {name: "placeholder", missing: true}, {name: "evil", missing: true}},
		warns: []string{"NUL byte"}},
	{file: "trailing-garbage.tar",
		build: func() []byte {
			b := stdTar(tar.FormatUSTAR, reg("a", "a"))
			return append(b, []byte("this is not part of the archive")...)
		},
		want:  []want{{name: "a", data: "a"}},
		warns: []string{"trailing garbage"}},
	{file: "concatenated.tar",
		build: func() []byte {
			return append(stdTar(tar.FormatUSTAR, reg("first", "1")), stdTar(tar.FormatUSTAR, reg("second", "2"))...)
		},
		want:  []want{{name: "first", data: "1"}, {name: "second", missing: true}},
		warns: []string{"another tar archive starts"}},
	{file: "no-eoa.tar",
		build: func() []byte {
			var t rawTar
			t.file("a", []byte(payload))
			return t.Bytes()
		},
		want:  []want{{name: "a", data: payload}},
		warns: []string{"without an end-of-archive marker"}},
	// tar writes the 1000 present bytes and stops; ovfmount mounts the full
	// size and fails reads past byte 1000, so the file never looks complete.
	{file: "truncated-data.tar", tarDiffers: []string{"cut"},
		build: func() []byte {
			var t rawTar
			t.file("whole", []byte("whole"))
			t.file("cut", []byte(payload))
			return t.Bytes()[:blockSize*3+1000]
		},
		want:  []want{{name: "whole", data: "whole"}, {name: "cut", data: payload[:1000], trunc: 1000}},
		warns: []string{"truncated: the archive holds 1000 of its 3200 bytes"}},
	{file: "truncated-header.tar",
		build: func() []byte {
			var t rawTar
			t.file("whole", []byte("whole"))
			t.file("next", []byte("next"))
			return t.Bytes()[:blockSize*2+300]
		},
		want:  []want{{name: "whole", data: "whole"}, {name: "next", missing: true}},
		warns: []string{"partial header of 300 bytes"}},
	{file: "bad-checksum-middle.tar",
		build: func() []byte {
			var t rawTar
			t.file("good", []byte("good"))
			t.header(hdr{name: "bad", size: 3, badChecksum: true})
			t.data([]byte("bad"))
			t.file("after", []byte("after"))
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "good", data: "good"}, {name: "bad", missing: true}, {name: "after", data: "after"}},
		warns: []string{"invalid header checksum: skipped 1024 damaged bytes"}},
	{file: "negative-size.tar",
		build: func() []byte {
			var t rawTar
			t.file("good", []byte("good"))
			t.header(hdr{name: "neg", sizeField: []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00")})
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "good", data: "good"}, {name: "neg", missing: true}},
		warns: []string{"invalid size field"}},
	// tar refuses the member outright; ovfmount mounts what is present and
	// fails reads past it.
	{file: "huge-pax-size.tar", tarDiffers: []string{"liar"},
		build: func() []byte {
			var t rawTar
			t.file("good", []byte("good"))
			t.pax(typeXHeader, "size", "99999999999999")
			t.header(hdr{name: "liar", size: 4})
			t.data([]byte("liar"))
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "good", data: "good"}, {name: "liar", trunc: 1536}},
		warns: []string{"truncated"}},
	{file: "huge-pax-header.tar",
		build: func() []byte {
			var t rawTar
			t.file("good", []byte("good"))
			t.header(hdr{name: "PaxHeaders/big", typ: typeXHeader, size: 1 << 32})
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "good", data: "good"}},
		warns: []string{"pax header of 4294967296 bytes runs past the end"}},
	{file: "base256-size.tar",
		build: func() []byte {
			var t rawTar
			t.header(hdr{name: "b256", magic: "gnu", sizeField: []byte("\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x80")})
			t.data([]byte(payload))
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "b256", data: payload}}},
	{file: "v7.tar",
		build: func() []byte {
			var t rawTar
			t.header(hdr{name: "old/file", size: 3, magic: "v7"})
			t.data([]byte("old"))
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "old/file", data: "old"}}},
	{file: "file-dir-conflict.tar", tarDiffers: []string{"c/z"},
		build: func() []byte {
			return stdTar(tar.FormatUSTAR, reg("a", "file a"), reg("a/b", "in a"),
				reg("c/d", "in c"), reg("c", "file c"),
				tar.Header{Name: "e/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("e", "file e"),
				reg("f", "file f"), tar.Header{Name: "f/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("f/g", "in f"),
				tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "c"}, reg("s/z", "through a symlink"))
		},
		// What GNU tar 1.34 -x leaves behind for the same archive, except
		// that tar writes s/z through the symlink s (into c/z): ovfmount
		// never follows a symlink.
		want: []want{{name: "a", data: "file a"}, {name: "a/b", missing: true}, {name: "c", typ: TypeDir},
			{name: "c/d", data: "in c"}, {name: "e", data: "file e"}, {name: "f", typ: TypeDir}, {name: "f/g", data: "in f"},
			{name: "s", typ: TypeSymlink, linkname: "c"}, {name: "s/z", missing: true}},
		warns: []string{"not mounted: \"a\" is a file, not a directory", "directory is not replaced by a file",
			"replaces the empty directory", "replaces the file at offset", "not mounted: \"s\" is a symlink"}},
	{file: "gnu-sparse.tar",
		build: func() []byte {
			var t rawTar
			// Regions are whole blocks except at the end of the file, as
			// GNU tar writes them: 512 bytes at 0, 100 bytes at 9900.
			t.header(hdr{name: "sparse", typ: typeGNUSparse, magic: "gnu", size: 612, gnuRealSize: 10000,
				gnuSparse: []sparseEntry{{0, 512}, {9900, 100}, {10000, 0}}})
			t.data([]byte(strings.Repeat("A", 512) + strings.Repeat("B", 100)))
			t.file("after", []byte("after"))
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "sparse", data: strings.Repeat("A", 512) + strings.Repeat("\x00", 9388) + strings.Repeat("B", 100)},
			{name: "after", data: "after"}}},
	{file: "gnu-sparse-extended.tar",
		build: func() []byte {
			var t rawTar
			t.header(hdr{name: "sparse", typ: typeGNUSparse, magic: "gnu", size: 6 * 512, gnuRealSize: 12 * 512, gnuExtended: true,
				gnuSparse: []sparseEntry{{0, 512}, {2 * 512, 512}, {4 * 512, 512}, {6 * 512, 512}}})
			var ext [blockSize]byte // two more regions in an extension block
			octal(ext[0:12], 8*512)
			octal(ext[12:24], 512)
			octal(ext[24:36], 11*512)
			octal(ext[36:48], 512)
			t.Write(ext[:])
			for _, c := range "abcdef" {
				t.Write(bytes.Repeat([]byte{byte(c)}, 512))
			}
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "sparse", data: func() string {
			b := make([]byte, 12*512)
			for i, blk := range []int{0, 2, 4, 6, 8, 11} {
				copy(b[blk*512:], bytes.Repeat([]byte{"abcdef"[i]}, 512))
			}
			return string(b)
		}()}}},
	{file: "pax-sparse-0.1.tar",
		build: func() []byte {
			var t rawTar
			t.pax(typeXHeader, "GNU.sparse.size", "8192", "GNU.sparse.numblocks", "2", "GNU.sparse.map", "0,512,8180,12",
				"GNU.sparse.name", "disk.raw")
			t.header(hdr{name: "GNUSparseFile.1/disk.raw", size: 524})
			t.data([]byte(strings.Repeat("h", 512) + "tail of disk"))
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "disk.raw", data: strings.Repeat("h", 512) + strings.Repeat("\x00", 7668) + "tail of disk"}, {name: "GNUSparseFile.1/disk.raw", missing: true}}},
	{file: "pax-sparse-0.0.tar",
		build: func() []byte {
			var t rawTar
			t.pax(typeXHeader, "GNU.sparse.size", "4096", "GNU.sparse.numblocks", "2",
				"GNU.sparse.offset", "1024", "GNU.sparse.numbytes", "512", "GNU.sparse.offset", "3584", "GNU.sparse.numbytes", "512")
			t.header(hdr{name: "zero", size: 1024})
			t.data([]byte(strings.Repeat("w", 512) + strings.Repeat("y", 512)))
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "zero", data: strings.Repeat("\x00", 1024) + strings.Repeat("w", 512) + strings.Repeat("\x00", 2048) + strings.Repeat("y", 512)}}},
	{file: "pax-sparse-1.0.tar",
		build: func() []byte {
			var t rawTar
			t.pax(typeXHeader, "GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "one.raw",
				"GNU.sparse.realsize", "3000")
			m := []byte("2\n0\n512\n2900\n100\n")
			m = append(m, make([]byte, blockSize-len(m))...)
			t.header(hdr{name: "GNUSparseFile.0/one.raw", size: int64(len(m)) + 612})
			t.data(append(m, strings.Repeat("A", 512)+strings.Repeat("C", 100)...))
			t.file("after", []byte("after"))
			t.end()
			return t.Bytes()
		},
		want: []want{{name: "one.raw", data: strings.Repeat("A", 512) + strings.Repeat("\x00", 2388) + strings.Repeat("C", 100)}, {name: "after", data: "after"}}},
	// tar extracts the out-of-order map into garbage; ovfmount refuses it.
	{file: "bad-sparse-map.tar", tarDiffers: []string{"unordered"},
		build: func() []byte {
			var t rawTar
			t.pax(typeXHeader, "GNU.sparse.size", "100", "GNU.sparse.map", "50,10,0,10")
			t.header(hdr{name: "unordered", size: 20})
			t.data(make([]byte, 20))
			t.file("after", []byte("after"))
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "unordered", missing: true}, {name: "after", data: "after"}},
		warns: []string{"sparse member skipped"}},
	// tar also honours the global size and reads 9 bytes for "b"; ovfmount
	// does not let a global record move every later header.
	{file: "global-pax.tar", tarDiffers: []string{"everything"},
		build: func() []byte {
			var t rawTar
			t.pax(typeXGlobal, "mtime", "1600000000", "path", "everything", "size", "9")
			t.file("a", []byte("a"))
			t.file("b", []byte("b"))
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "everything", data: "b"}, {name: "a", missing: true}},
		warns: []string{"names every later member", "global pax record \"size\" ignored", "is shadowed"}},
	// tar extracts unknown types as regular files; ovfmount skips them as
	// special entries.
	{file: "unknown-type.tar", tarDiffers: []string{"weird"},
		build: func() []byte {
			var t rawTar
			t.header(hdr{name: "weird", typ: 'Z', size: 5})
			t.data([]byte("weird"))
			t.file("after", []byte("after"))
			t.end()
			return t.Bytes()
		},
		want:  []want{{name: "weird", missing: true}, {name: "after", data: "after"}},
		warns: []string{"unknown type 'Z'"}},
	{file: "empty.tar",
		build: func() []byte { return make([]byte, 1024) },
		warns: []string{"no members"}},
	{file: "not-tar.png",
		build: func() []byte { return append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 1000)...) },
		err:   ErrFormat},
	{file: "gzipped.ova",
		build: func() []byte {
			var buf bytes.Buffer
			z := gzip.NewWriter(&buf)
			z.Write(stdTar(tar.FormatUSTAR, reg("a", "a")))
			z.Close()
			return buf.Bytes()
		},
		err: ErrFormat},
	{file: "tiny.bin", build: func() []byte { return []byte("ABCD") }, err: ErrFormat},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.file, func(t *testing.T) {
			path := filepath.Join("testdata", v.file)
			built := v.build()
			if *update {
				if err := os.WriteFile(path, built, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestVectors -update to generate it)", err)
			}
			if !bytes.Equal(data, built) {
				t.Fatalf("testdata/%s differs from its generator; run go test -run TestVectors -update", v.file)
			}
			a, err := Open(bytes.NewReader(data), int64(len(data)))
			if v.err != nil {
				if !errors.Is(err, v.err) {
					t.Fatalf("Open: err = %v, want %v", err, v.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			checkMembers(t, a, v.want)
			var all []string
			for _, w := range a.Warnings() {
				all = append(all, w.String())
			}
			for _, w := range v.warns {
				if !strings.Contains(strings.Join(all, "\n"), w) {
					t.Errorf("no warning contains %q; warnings:\n%s", w, strings.Join(all, "\n"))
				}
			}
			if len(v.warns) == 0 && len(all) > 0 {
				t.Errorf("unexpected warnings:\n%s", strings.Join(all, "\n"))
			}
		})
	}
}

func checkMembers(t *testing.T, a *Archive, wants []want) {
	t.Helper()
	for _, w := range wants {
		m, ok := a.Lookup(w.name)
		if w.missing {
			if ok {
				t.Errorf("%q is mounted, want it absent", w.name)
			}
			continue
		}
		if !ok {
			t.Errorf("%q not found; members: %v", w.name, names(a))
			continue
		}
		if m.Type != w.typ {
			t.Errorf("%q: type %v, want %v", w.name, m.Type, w.typ)
		}
		if w.linkname != "" && m.Linkname != w.linkname {
			t.Errorf("%q: link %q, want %q", w.name, m.Linkname, w.linkname)
		}
		if m.Type != TypeFile {
			continue
		}
		if w.trunc > 0 {
			if !m.Truncated() || m.Available() != w.trunc {
				t.Errorf("%q: truncated=%v available=%d, want %d", w.name, m.Truncated(), m.Available(), w.trunc)
			}
			got := make([]byte, w.trunc)
			if _, err := m.ReadAt(got, 0); err != nil || string(got) != w.data[:min(len(w.data), int(w.trunc))] && w.data != "" {
				t.Errorf("%q: reading the present part: %v", w.name, err)
			}
			if _, err := m.ReadAt(make([]byte, 2), w.trunc-1); !errors.Is(err, ErrTruncated) {
				t.Errorf("%q: read across the truncation: err = %v, want ErrTruncated", w.name, err)
			}
			continue
		}
		if m.Size != int64(len(w.data)) {
			t.Errorf("%q: size %d, want %d", w.name, m.Size, len(w.data))
			continue
		}
		got := make([]byte, m.Size)
		if n, err := m.ReadAt(got, 0); n != len(got) || (err != nil && len(got) > 0) {
			t.Errorf("%q: ReadAt = %d, %v", w.name, n, err)
		}
		if string(got) != w.data {
			t.Errorf("%q: contents differ", w.name)
		}
	}
}

func names(a *Archive) []string {
	var out []string
	for _, m := range a.Members() {
		out = append(out, m.Name)
	}
	return out
}
