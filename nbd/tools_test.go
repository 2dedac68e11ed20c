package nbd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testExports are served read-only by the tool tests: a sparse disk, and
// one whose size is no multiple of 512.
func testExports() map[string]*memExport {
	return map[string]*memExport{
		"disk":     newMem(4<<20, 1),
		"odd-size": newMem(1<<20+1234, 2),
	}
}

func asExports(m map[string]*memExport) map[string]Export {
	e := map[string]Export{}
	for k, v := range m {
		e[k] = v
	}
	return e
}

// extent is a run of blocks with one base:allocation state.
type extent struct {
	off, length int64
	hole        bool
}

// wantExtents are an export's extents, merged.
func wantExtents(m *memExport) []extent {
	var out []extent
	for b, a := range m.alloc {
		off := int64(b) * blockSize
		n := min(blockSize, m.Size()-off)
		if len(out) > 0 && out[len(out)-1].hole == !a {
			out[len(out)-1].length += n
			continue
		}
		out = append(out, extent{off, n, !a})
	}
	return out
}

func TestNbdinfoList(t *testing.T) {
	exports := testExports()
	socket, _ := testServer(t, asExports(exports), Options{})
	out := run(t, "nbdinfo", "--list", "--json", uri(socket, ""))
	var got struct {
		Exports []struct {
			Name string `json:"export-name"`
			Size int64  `json:"export-size"`
		} `json:"exports"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var names []string
	for _, e := range got.Exports {
		names = append(names, e.Name)
		if want := exports[e.Name]; want == nil || want.Size() != e.Size {
			t.Errorf("export %q of %d bytes listed", e.Name, e.Size)
		}
	}
	if slices.Sort(names); !slices.Equal(names, []string{"disk", "odd-size"}) {
		t.Errorf("listed %q", names)
	}
}

func TestNbdinfoJSON(t *testing.T) {
	exports := testExports()
	socket, _ := testServer(t, asExports(exports), Options{})
	for name, m := range exports {
		var got struct {
			Exports []struct {
				Name     string   `json:"export-name"`
				Size     int64    `json:"export-size"`
				ReadOnly bool     `json:"is_read_only"`
				Multi    bool     `json:"can_multi_conn"`
				Contexts []string `json:"contexts"`
			} `json:"exports"`
		}
		out := run(t, "nbdinfo", "--json", uri(socket, name))
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(got.Exports) != 1 {
			t.Fatalf("%s: %s", name, out)
		}
		e := got.Exports[0]
		if e.Name != name || e.Size != m.Size() || !e.ReadOnly || !e.Multi || !slices.Equal(e.Contexts, []string{allocationContext}) {
			t.Errorf("%s: got %+v", name, e)
		}
	}
}

// parseMap reads nbdinfo --map lines (offset, length, type, description)
// into merged extents.
func parseMap(t *testing.T, out string) []extent {
	var got []extent
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		off, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.ParseInt(f[1], 10, 64)
		typ, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("map line %q", line)
		}
		hole := typ&int(stateHole) != 0
		if typ&int(stateZero) != 0 != hole {
			t.Errorf("map line %q: hole and zero disagree", line)
		}
		if len(got) > 0 && got[len(got)-1].hole == hole && got[len(got)-1].off+got[len(got)-1].length == off {
			got[len(got)-1].length += n
			continue
		}
		got = append(got, extent{off, n, hole})
	}
	return got
}

func TestNbdinfoMap(t *testing.T) {
	exports := testExports()
	socket, _ := testServer(t, asExports(exports), Options{})
	for name, m := range exports {
		got := parseMap(t, run(t, "nbdinfo", "--map", uri(socket, name)))
		if want := wantExtents(m); !slices.Equal(got, want) {
			t.Errorf("%s: map\n got %v\nwant %v", name, got, want)
		}
	}
}

func TestNbdcopy(t *testing.T) {
	exports := testExports()
	socket, _ := testServer(t, asExports(exports), Options{})
	dir := t.TempDir()
	for name, m := range exports {
		out := filepath.Join(dir, name+".raw")
		run(t, "nbdcopy", uri(socket, name), out)
		checkFile(t, out, m.bytes())
	}
}

// TestDefaultExport: with one export, the empty name is that export.
func TestDefaultExport(t *testing.T) {
	m := newMem(1<<20, 3)
	socket, _ := testServer(t, map[string]Export{"only": m}, Options{})
	out := filepath.Join(t.TempDir(), "out.raw")
	run(t, "nbdcopy", uri(socket, ""), out)
	checkFile(t, out, m.bytes())
}

func TestQemuImgConvert(t *testing.T) {
	exports := testExports()
	socket, _ := testServer(t, asExports(exports), Options{})
	dir := t.TempDir()
	for name, m := range exports {
		out := filepath.Join(dir, name+".raw")
		run(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", uri(socket, name), out)
		// qemu's block layer counts in sectors: it rounds an unaligned
		// size up and reads the tail as zeroes, without asking past the end.
		want := m.bytes()
		want = append(want, make([]byte, (512-len(want)%512)%512)...)
		checkFile(t, out, want)
	}
}

// TestQemuImgMap: qemu's NBD client reads base:allocation; its map must
// show data exactly where the export is allocated.
func TestQemuImgMap(t *testing.T) {
	m := testExports()["disk"]
	socket, _ := testServer(t, map[string]Export{"disk": m}, Options{})
	out := run(t, "qemu-img", "map", "-f", "raw", "--output=json", uri(socket, "disk"))
	var entries []struct {
		Start, Length int64
		Data, Zero    bool
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var covered int64
	for _, e := range entries {
		if e.Start != covered {
			t.Fatalf("entry at %d, want %d", e.Start, covered)
		}
		for off := e.Start; off < e.Start+e.Length; off += blockSize {
			if a := m.alloc[off/blockSize]; a != e.Data || a == e.Zero {
				t.Errorf("block at %d: allocated %v, qemu-img map says data %v zero %v", off, a, e.Data, e.Zero)
			}
		}
		covered += e.Length
	}
	if covered != m.Size() {
		t.Errorf("map covers %d of %d bytes", covered, m.Size())
	}
}

// TestQemuIOWrites writes through qemu-io into a writable export and reads
// the result back over NBD and from the export itself.
func TestQemuIOWrites(t *testing.T) {
	w := &writableExport{memExport: *newMem(4<<20, 4)}
	socket, _ := testServer(t, map[string]Export{"rw": w}, Options{})
	u := uri(socket, "rw")
	want := w.bytes()
	io := func(cmd string) {
		t.Helper()
		out := run(t, "qemu-io", "-f", "raw", "-c", cmd, u)
		if strings.Contains(out, "failed") || strings.Contains(out, "error") {
			t.Fatalf("qemu-io -c %q: %s", cmd, out)
		}
	}

	io("write -P 0xab 4096 8192")
	copy(want[4096:4096+8192], bytes.Repeat([]byte{0xab}, 8192))
	io("read -P 0xab 4096 8192")
	io("write -z 65536 131072") // allocated zeroes over a data block and a hole
	clear(want[65536 : 65536+131072])
	io("read -P 0 65536 131072")
	io("discard 196608 65536") // a whole data block
	clear(want[196608 : 196608+65536])
	io("write -f -P 0x5c 1048576 65536") // FUA
	copy(want[1<<20:], bytes.Repeat([]byte{0x5c}, 65536))

	if got := w.bytes(); !bytes.Equal(got, want) {
		t.Errorf("export holds other bytes than written (first difference at %d)", firstDiff(got, want))
	}
	if w.alloc[196608/blockSize] {
		t.Error("the discarded block is still allocated")
	}
	if w.flushes == 0 {
		t.Error("a FUA write did not flush")
	}
	out := filepath.Join(t.TempDir(), "rw.raw")
	run(t, "nbdcopy", u, out)
	checkFile(t, out, want)
}

// TestReadOnlyRefusesWrites: qemu-io, told the export is read-only,
// refuses to open it for writing, and reads it when opened read-only. (The
// server's EPERM to writes sent anyway is checked in TestHostile.)
func TestReadOnlyRefusesWrites(t *testing.T) {
	m := newMem(1<<20, 5)
	socket, _ := testServer(t, map[string]Export{"ro": m}, Options{})
	before := m.bytes()
	out, err := execTool(t, "qemu-io", "-f", "raw", "-c", "write -P 0xab 0 4096", uri(socket, "ro")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("write to a read-only export: %v, %s", err, out)
	}
	run(t, "qemu-io", "-r", "-f", "raw", "-c", "read -P 0 65536 65536", uri(socket, "ro")) // a hole
	if !bytes.Equal(m.bytes(), before) {
		t.Error("a read-only export changed")
	}
}

// TestMultiConn: several nbdcopy runs at once (each itself on several
// connections, as CAN_MULTI_CONN allows) all get the right bytes.
func TestMultiConn(t *testing.T) {
	exports := testExports()
	socket, _ := testServer(t, asExports(exports), Options{})
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 4 {
		for name, m := range exports {
			out := filepath.Join(dir, fmt.Sprintf("%s-%d.raw", name, i))
			wg.Go(func() {
				run(t, "nbdcopy", "--connections=4", uri(socket, name), out)
				checkFile(t, out, m.bytes())
			})
		}
	}
	wg.Wait()
}

func checkFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes differ from the export's %d (first difference at %d)", filepath.Base(path), len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// described is an export with a description.
type described struct{ *memExport }

func (described) Description() string { return "the first disk" }

// TestDescription: nbdinfo shows a Describer's description.
func TestDescription(t *testing.T) {
	socket, _ := testServer(t, map[string]Export{"disk": described{newMem(blockSize, 1)}}, Options{})
	for _, args := range [][]string{{"--json", uri(socket, "disk")}, {"--list", "--json", uri(socket, "")}} {
		if out := run(t, "nbdinfo", args...); !strings.Contains(out, `"description": "the first disk"`) {
			t.Errorf("nbdinfo %s: %s", args[0], out)
		}
	}
}
