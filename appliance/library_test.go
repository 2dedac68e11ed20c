package appliance

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFolderName(t *testing.T) {
	for in, want := range map[string]string{
		"appliance-2.4.ova":    "appliance-2.4",
		"appliance-2.4.OVA.gz": "appliance-2.4",
		"golden.tar.xz":        "golden",
		"vendor.zip":           "vendor",
		"image.ova.zst":        "image",
		"plain":                "plain",
		".ova":                 ".ova", // never emptied by stripping
		"..":                   "_..",
		"a/b.ova":              "a_b",
	} {
		if got := FolderName(in); got != want {
			t.Errorf("FolderName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A package to expand: a root, a file, and a folder whose entries are
// found later and hold a folder found later still.
func testPackage() *Package {
	return &Package{Entries: []*Entry{
		{Path: "", Type: Dir},
		{Path: "app.ovf", Type: Regular},
		{Path: "disks", Type: Dir, Expand: func(context.Context) ([]*Entry, error) {
			return []*Entry{{Path: "disks/d.raw", Type: Regular},
				{Path: "disks/inner", Type: Dir, Expand: func(context.Context) ([]*Entry, error) {
					return []*Entry{{Path: "disks/inner/x", Type: Regular}}, nil
				}}}, nil
		}},
	}}
}

func TestLibraryFolders(t *testing.T) {
	opened := map[string]int{}
	src := func(name, base string, err error) LibrarySource {
		return LibrarySource{Name: name, Base: base, Open: func(context.Context) (*Package, io.Closer, error) {
			opened[name]++
			if err != nil {
				return nil, nil, err
			}
			return testPackage(), nil, nil
		}}
	}
	l := NewLibrary([]LibrarySource{
		src("/b/app.ova", "app.ova", nil),
		src("/a/app.ova.gz", "app.ova.gz", nil),
		src("/c/zeta.ova", "zeta.ova", errors.New("not an OVA")),
	}, time.Unix(0, 0))
	es := l.Entries()
	var names []string
	for _, e := range es[1:] {
		names = append(names, e.Path)
	}
	if len(names) != 3 || !strings.HasPrefix(names[0], "app~") || !strings.HasPrefix(names[1], "app~") || names[2] != "zeta" {
		t.Fatalf("folders %v", names)
	}
	// Suffixes come from the source alone: the same in another library.
	again := NewLibrary([]LibrarySource{src("/a/app.ova.gz", "app.ova.gz", nil), src("/x/app.ova", "app.ova", nil)}, time.Time{})
	folderOf := func(l *Library, src string) string {
		for _, e := range l.Entries()[1:] {
			if e.Attrs()[AttrSource] == src {
				return e.Path
			}
		}
		return ""
	}
	if a, b := folderOf(l, "/a/app.ova.gz"), folderOf(again, "/a/app.ova.gz"); a == "" || a != b {
		t.Errorf("the folder of /a/app.ova.gz is %q in one library and %q in another", a, b)
	}
	if len(opened) != 0 {
		t.Fatalf("listing opened %v", opened)
	}
	app := es[1]
	if a := app.Attrs(); a[AttrState] != "closed" || a[AttrSource] != "/a/app.ova.gz" && a[AttrSource] != "/b/app.ova" {
		t.Errorf("before a look: %v", a)
	}
	got, err := app.Expand(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != app.Path+"/app.ovf" || got[1].Path != app.Path+"/disks" {
		t.Fatalf("expanded %v", entryPaths(got))
	}
	more, err := got[1].Expand(context.Background())
	if err != nil || len(more) != 2 || more[1].Path != app.Path+"/disks/inner" {
		t.Fatalf("disks expanded to %v, %v", entryPaths(more), err)
	}
	deeper, err := more[1].Expand(context.Background())
	if err != nil || len(deeper) != 1 || deeper[0].Path != app.Path+"/disks/inner/x" {
		t.Fatalf("inner expanded to %v, %v", entryPaths(deeper), err)
	}
	if a := app.Attrs(); a[AttrState] != "open" {
		t.Errorf("after a look: %v", a)
	}
	app.Expand(context.Background())
	if src := app.Attrs()[AttrSource]; opened[src] != 1 {
		t.Errorf("%s opened %d times", src, opened[src])
	}

	// A failure is remembered, shown, and retried only later.
	zeta, f := es[3], l.folders[2]
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	for range 3 {
		if _, err := zeta.Expand(context.Background()); err == nil || !strings.Contains(err.Error(), "not an OVA") {
			t.Fatalf("zeta: %v", err)
		}
	}
	if opened["/c/zeta.ova"] != 1 {
		t.Errorf("a failed archive was opened %d times within %v", opened["/c/zeta.ova"], retryFailedAfter)
	}
	if a := zeta.Attrs(); a[AttrState] != "failed" || a[AttrError] != "not an OVA" {
		t.Errorf("failed folder's attributes: %v", a)
	}
	now = now.Add(retryFailedAfter)
	zeta.Expand(context.Background())
	if opened["/c/zeta.ova"] != 2 {
		t.Errorf("not retried after %v", retryFailedAfter)
	}
	// An interrupted look is no verdict.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.err = nil
	opened["/c/zeta.ova"] = 0
	zeta.Expand(ctx)
	if zeta.Attrs()[AttrState] != "closed" {
		t.Errorf("an interrupted open was remembered as a failure")
	}
}

func entryPaths(es []*Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}
