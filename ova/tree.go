package ova

import (
	"fmt"
	"io"
	"io/fs"
	"sort"
)

// tree resolves scanned entries into the set of members tar -x would leave
// behind: names checked, the last of duplicate names kept, hard links
// pointing at their target's data, directories explicit or implied, and
// special files dropped.
type tree struct {
	src      io.ReaderAt
	nodes    map[string]*node
	warn     []Warning
	explicit map[string]bool // directories that had their own header
}

type node struct {
	m        *Member
	children int
}

func newTree(src io.ReaderAt) *tree {
	root := &Member{Name: "", Type: TypeDir, Mode: 0o755, HeaderOffset: -1}
	return &tree{src: src, nodes: map[string]*node{"": {m: root}}, explicit: map[string]bool{}}
}

func (t *tree) warnf(e *entry, format string, args ...any) {
	t.warn = append(t.warn, Warning{Offset: e.hdrOff, Name: e.rawName, Msg: fmt.Sprintf(format, args...)})
}

// checkedName is the name e is mounted at, or false when it cannot be
// mounted; either way the warning says what was changed or refused.
func (t *tree) checkedName(e *entry) (string, bool) {
	name, note, ok := cleanName(e.rawName)
	if !ok {
		t.warnf(e, "not mounted: %s", note)
		return "", false
	}
	if note != "" {
		t.warnf(e, "mounted as %q: %s", name, note)
	}
	return name, true
}

func (t *tree) add(e *entry) {
	name, ok := t.checkedName(e)
	if !ok {
		return
	}
	switch e.typ {
	case typeDir, typeGNUDump:
		t.dir(name, e)
	case typeReg, typeRegA, typeCont, typeGNUSparse:
		if name == "" {
			t.warnf(e, "not mounted: a file with an empty name")
			return
		}
		m := &Member{Type: TypeFile, Size: e.size, src: t.src, frags: e.frags, avail: e.avail}
		if len(e.frags) == 1 && &e.frags[0] == &e.one[0] {
			m.one = e.one // the entry is reused; keep the fragment with the member
			m.frags = m.one[:]
		}
		t.leaf(name, e, m)
	case typeSymlink:
		if name == "" || len(e.linkname) > 4095 || containsNUL(e.linkname) {
			t.warnf(e, "symlink not mounted: its name or target is invalid")
			return
		}
		t.leaf(name, e, &Member{Type: TypeSymlink, Linkname: e.linkname})
	case typeLink:
		t.hardLink(name, e)
	case typeChar, typeBlock:
		t.warnf(e, "device entry skipped")
	case typeFifo:
		t.warnf(e, "FIFO entry skipped")
	case typeGNUVol:
		// A volume label names the archive, not a file.
	case typeGNUMulti:
		t.warnf(e, "multi-volume continuation skipped: the member started in another volume")
	default:
		t.warnf(e, "entry of unknown type %q skipped", e.typ)
	}
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// hardLink gives the link its target's data as the archive stands at this
// point, which is what tar -x does: it links to the file already extracted,
// and a later member of the target's name does not change the link.
func (t *tree) hardLink(name string, e *entry) {
	target, _, ok := cleanName(e.linkname)
	if !ok || target == "" {
		t.warnf(e, "hard link skipped: its target %q is not a valid name", e.linkname)
		return
	}
	n := t.nodes[target]
	if n == nil || n.m.Type == TypeDir {
		t.warnf(e, "hard link skipped: its target %q is not a file earlier in the archive", e.linkname)
		return
	}
	if name == "" || name == target {
		return
	}
	tm := n.m
	link := &Member{Type: tm.Type, Size: tm.Size, Linkname: tm.Linkname, src: tm.src, frags: tm.frags, avail: tm.avail}
	if t.leaf(name, e, link) {
		// A hard link shares its target's inode, so its metadata too.
		link.Mode, link.ModTime, link.UID, link.GID = tm.Mode, tm.ModTime, tm.UID, tm.GID
	}
}

// leaf puts a file or symlink at name. The last member of a name wins, as
// with tar -x, except that a directory that already holds members is not
// replaced by a file.
func (t *tree) leaf(name string, e *entry, m *Member) bool {
	m.Name = name
	m.HeaderOffset = e.hdrOff
	m.tar = e.tar
	m.UID, m.GID = e.uid, e.gid
	m.Mode = permOf(e.mode)
	m.ModTime = e.mtime
	if !t.ensureDir(parentOf(name), e) {
		return false
	}
	old := t.nodes[name]
	switch {
	case old == nil:
		t.nodes[parentOf(name)].children++
	case old.m.Type == TypeDir && old.children > 0:
		t.warnf(e, "not mounted: %q is already a directory with members, and a directory is not replaced by a file", name)
		return false
	case old.m.Type == TypeDir:
		t.warnf(e, "replaces the empty directory %q of the same name", name)
		delete(t.explicit, name)
	default:
		t.warnf(e, "the member at offset %d of the same name is shadowed: the last one wins, as with tar -x", old.m.HeaderOffset)
	}
	t.nodes[name] = &node{m: m}
	return true
}

// dir records an explicit directory entry. Like tar -x, it replaces a
// file or symlink of the same name.
func (t *tree) dir(name string, e *entry) {
	if old := t.nodes[name]; old != nil && old.m.Type != TypeDir {
		t.warnf(e, "replaces the %s at offset %d of the same name, as tar -x does", old.m.Type, old.m.HeaderOffset)
		t.nodes[name] = &node{m: &Member{Name: name, Type: TypeDir}}
	} else if !t.ensureDir(name, e) {
		return
	}
	m := t.nodes[name].m
	m.Mode = permOf(e.mode)
	m.ModTime = e.mtime
	m.UID, m.GID = e.uid, e.gid
	m.HeaderOffset = e.hdrOff
	t.explicit[name] = true
}

// ensureDir makes name and its ancestors directories, implying the missing
// ones. A file or symlink in the way makes the member that needs the
// directory fail, as it does for tar -x ("Not a directory"); ovfmount never
// looks through a symlink.
func (t *tree) ensureDir(name string, e *entry) bool {
	n := t.nodes[name]
	if n != nil {
		if n.m.Type == TypeDir {
			return true
		}
		t.warnf(e, "not mounted: %q is a %s, not a directory", name, n.m.Type)
		return false
	}
	if !t.ensureDir(parentOf(name), e) {
		return false
	}
	t.nodes[parentOf(name)].children++
	t.nodes[name] = &node{m: &Member{Name: name, Type: TypeDir, Mode: 0o755, HeaderOffset: -1}}
	return true
}

// permOf keeps the permission bits of a tar mode. Set-id and sticky bits
// are dropped: the mount is read-only and never runs anything as another
// user, and tar -x as a regular user drops them too.
func permOf(mode int64) fs.FileMode {
	return fs.FileMode(mode & 0o777)
}

// members returns the resolved members sorted by name, root first, with
// implied directories dated by their newest descendant.
func (t *tree) members() []*Member {
	out := make([]*Member, 0, len(t.nodes))
	for _, n := range t.nodes {
		out = append(out, n.m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := len(out) - 1; i >= 0; i-- {
		m := out[i]
		if m.Name == "" {
			continue
		}
		p := t.nodes[parentOf(m.Name)].m
		if !t.explicit[p.Name] && m.ModTime.After(p.ModTime) {
			p.ModTime = m.ModTime
		}
	}
	return out
}
