package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestDiskHashFlags(t *testing.T) {
	for _, c := range []struct {
		d    diskHashFlags
		algs string
		err  string
	}{
		{d: diskHashFlags{}, algs: "[]"},
		{d: diskHashFlags{disks: true}, algs: "[sha256]"},
		{d: diskHashFlags{disks: true, hash: "blake3,MD5"}, algs: "[md5 blake3]"},
		{d: diskHashFlags{disks: true, hash: "md5,whirlpool"}, err: `unknown hash algorithm "whirlpool"`},
		{d: diskHashFlags{hash: "md5"}, err: "need --disks"},
		{d: diskHashFlags{partitions: true}, err: "need --disks"},
	} {
		err := c.d.parse()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%+v: %v", c.d, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || codeOf(err) != exitUsage):
			t.Errorf("%+v: %v (code %d), want a usage error saying %q", c.d, err, codeOf(err), c.err)
		case c.err == "" && fmt.Sprint(c.d.algs) != c.algs:
			t.Errorf("%+v: algorithms %v, want %s", c.d, c.d.algs, c.algs)
		}
	}
}

// An unknown algorithm is a usage error before any archive is opened.
func TestVerifyUnknownHash(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"verify", "--disks", "--hash", "crc32", "/nonexistent.ova"}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), `unknown hash algorithm "crc32"`) || strings.Contains(errb.String(), "no such file") {
		t.Errorf("exit %d, %q", code, errb.String())
	}
}
