package main

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestRemoteFlagsHeaders(t *testing.T) {
	r := remoteFlags{headers: []string{"authorization:  Bearer s3cret ", "X-Api-Key: k,with,commas"}, timeout: 5e9, cacheSize: 1 << 20}
	opt, err := r.options(nil, "/c", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if got := opt.Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if got := opt.Header.Get("X-Api-Key"); got != "k,with,commas" {
		t.Errorf("X-Api-Key %q", got)
	}
	if opt.CacheDir != "/c/remote" || opt.DiskBudget != 1<<20 || opt.RequestTimeout != 5e9 {
		t.Errorf("cache %q %d, timeout %v", opt.CacheDir, opt.DiskBudget, opt.RequestTimeout)
	}
	for _, bad := range []string{"no colon s3cret", ": s3cret", "Two Words: s3cret", "X: s3cret\r\nInjected: 1"} {
		r := remoteFlags{headers: []string{"Ok: 1", bad}, timeout: 5e9}
		_, err := r.options(nil, "", zerolog.Nop())
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "#2") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if opt, _ := (&remoteFlags{timeout: 5e9}).options(nil, "", zerolog.Nop()); opt.CacheDir != "" {
		t.Errorf("no --cache-dir, yet a remote cache in %q", opt.CacheDir)
	}
}

func TestShownName(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@h.example/a.ova?X-Amz-Signature=abc": "https://h.example/a.ova?REDACTED",
		"HTTP://h/a.ova": "http://h/a.ova",
		"local/a.ova":    "local/a.ova",
	} {
		if got := shownName(in); got != want {
			t.Errorf("shownName(%q) = %q, want %q", in, got, want)
		}
	}
}
