package overlay

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Status is what `ovfmount overlay status` shows: read from the folder
// alone, without the archive, and without its lock (a mounted folder's
// journal is read up to its last whole commit).
type Status struct {
	Dir      string       `json:"dir"`
	Key      string       `json:"key"`
	Name     string       `json:"name,omitempty"`
	Describe string       `json:"archive"`
	Created  time.Time    `json:"created"`
	Disks    []DiskStatus `json:"disks"`
}

// DiskStatus is one disk's overlay as committed.
type DiskStatus struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	BlockSize int    `json:"block_size"`
	// Written is the bytes of data the overlay holds; DataBlocks and
	// ZeroBlocks count blocks held as data and as zeros (discarded).
	Written    int64 `json:"written"`
	DataBlocks int64 `json:"data_blocks"`
	ZeroBlocks int64 `json:"zero_blocks"`
	// Commits counts the journal's commits since its last checkpoint;
	// LastSync is the last one's time (zero if none).
	Commits  int       `json:"commits"`
	LastSync time.Time `json:"last_sync,omitzero"`
	// JournalBytes and DataFileBytes are the files' sizes; DataFileUsed
	// is the space the data file takes on the host (holes excluded).
	JournalBytes  int64 `json:"journal_bytes"`
	DataFileBytes int64 `json:"data_file_bytes"`
	DataFileUsed  int64 `json:"data_file_used"`
	// Tail, when set, says why the journal's end would be cut at the
	// next open (an uncommitted or torn append).
	Tail string `json:"tail,omitempty"`
	// Error, when set, says why the disk's overlay cannot be read (the
	// other fields are then empty); opening the disk would fail the same
	// way.
	Error string `json:"error,omitempty"`
}

// ReadStatus reads dir's record and every disk's journal. It fails only
// when dir is not an overlay folder or its record is damaged.
func ReadStatus(dir string) (Status, error) {
	rec, err := readRecord(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return Status{}, fmt.Errorf("%w: %s has no %s", ErrNotOverlay, dir, recordName)
		}
		return Status{}, err
	}
	st := Status{Dir: dir, Key: rec.Key, Name: rec.Name, Describe: rec.Describe, Created: rec.Created}
	names, err := dirNames(dir)
	if err != nil {
		return Status{}, err
	}
	slices.Sort(names)
	for _, n := range names {
		name, ok := strings.CutSuffix(n, journalExt)
		if !ok || validName(name) != nil {
			continue
		}
		ds, err := diskStatus(dir, name)
		if err != nil {
			// One damaged disk does not hide the others.
			ds = DiskStatus{Name: name, Error: err.Error()}
		}
		st.Disks = append(st.Disks, ds)
	}
	return st, nil
}

func diskStatus(dir, name string) (DiskStatus, error) {
	jf, err := os.OpenFile(filepath.Join(dir, name+journalExt), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return DiskStatus{}, fmt.Errorf("overlay: %w", err)
	}
	defer jf.Close()
	if err := regular(jf); err != nil {
		return DiskStatus{}, err
	}
	jst, err := jf.Stat()
	if err != nil {
		return DiskStatus{}, fmt.Errorf("overlay: %w", err)
	}
	ds := DiskStatus{Name: name, BlockSize: BlockSize, JournalBytes: jst.Size()}
	var slots uint64
	if fi, err := os.Stat(filepath.Join(dir, name+dataExt)); err == nil {
		ds.DataFileBytes = fi.Size()
		ds.DataFileUsed = allocatedBytes(fi)
		slots = uint64((fi.Size() + BlockSize - 1) / BlockSize)
	}
	hb := make([]byte, headerSize)
	if _, err := jf.ReadAt(hb, 0); err != nil {
		return DiskStatus{}, fmt.Errorf("%w: %s: journal header: %v", ErrCorrupt, name, err)
	}
	h, err := decodeHeader(hb)
	if err != nil {
		return DiskStatus{}, fmt.Errorf("overlay: %s: %w", name, err)
	}
	blocks := uint64((h.diskSize + BlockSize - 1) / BlockSize)
	t := newTable(blocks)
	rp, err := replay(jf, jst.Size(), limits{blocks: blocks, slots: slots}, func(e entry) { t.apply(e, func(uint64) {}) })
	if err != nil {
		return DiskStatus{}, fmt.Errorf("overlay: %s: %w", name, err)
	}
	ds.Size, ds.Commits, ds.Tail = rp.diskSize, rp.commits, rp.tail
	if rp.commits > 0 {
		ds.LastSync = rp.lastSync
	}
	ds.DataBlocks, ds.ZeroBlocks, ds.Written = t.data, t.zero, t.data*BlockSize
	return ds, nil
}
