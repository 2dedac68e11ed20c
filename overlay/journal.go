package overlay

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// checkpointSlack is how far the journal may grow past twice the size of a
// checkpoint of the map before a commit writes a checkpoint instead of
// appending, so that replay reads little more than the map itself. Tests
// lower it.
var checkpointSlack int64 = 4 << 20

// Sync makes every write that returned before Sync was called durable:
// the data file is synced, then a commit record is appended to the
// journal and synced. Slots the commit released become reusable (and are
// punched) only after it, so the committed map never names space a later
// write reused.
func (d *Disk) Sync() error {
	return d.commit(false)
}

func (d *Disk) commit(checkpoint bool) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	d.mu.Lock()
	es, freed := d.pending, d.pendingFree
	d.pending, d.pendingFree = nil, nil
	checkpoint = checkpoint || d.jnlEnd > checkpointSlack+2*entrySize*d.tab.entryCount()
	var snap []entry
	if checkpoint {
		snap = d.tab.entries()
	}
	d.mu.Unlock()
	if len(es) == 0 && len(freed) == 0 && !checkpoint {
		return nil
	}
	now := time.Now()
	err := d.durable(es, snap, checkpoint, now)
	if err != nil {
		// The map in memory is now ahead of the journal by updates no
		// commit will carry: refuse everything until a remount replays
		// the journal.
		err = fmt.Errorf("overlay: %s: commit failed, the disk must be reopened: %w", d.name, err)
		d.failed.Store(&err)
		return err
	}
	// Wait for every reader that may have looked up a released slot.
	d.reuse.Lock()
	d.reuse.Unlock()
	fr := coalesce(freed)
	if err := d.punch(fr); err != nil {
		// The commit is durable; only space is not given back, and the
		// slots are reused all the same. Say so, but do not fail fsync.
		d.warnings = append(d.warnings[:min(len(d.warnings), 8)], err.Error())
	}
	d.mu.Lock()
	d.alloc.give(fr)
	d.lastSync = now
	d.mu.Unlock()
	return nil
}

// durable syncs the data file, then appends es and a commit record to the
// journal, or replaces the journal by a checkpoint of snap.
func (d *Disk) durable(es, snap []entry, checkpoint bool, now time.Time) error {
	if err := unix.Fdatasync(int(d.data.Fd())); err != nil {
		return fmt.Errorf("sync data: %w", err)
	}
	d.seq++
	if checkpoint {
		h := header{blockSize: BlockSize, diskSize: d.size, created: d.created}
		b := appendEntries(h.encode(), snap, d.seq, now)
		if err := writeAtomic(d.dir, d.name+journalExt, b); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(d.dir, d.name+journalExt), os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		d.jnl.Close()
		d.jnl, d.jnlEnd = f, int64(len(b))
		return nil
	}
	b := appendEntries(nil, es, d.seq, now)
	if _, err := d.jnl.WriteAt(b, d.jnlEnd); err != nil {
		return fmt.Errorf("append to journal: %w", err)
	}
	if err := unix.Fdatasync(int(d.jnl.Fd())); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	d.jnlEnd += int64(len(b))
	return nil
}

// close commits with a checkpoint and closes the files.
func (d *Disk) close() error {
	err := d.usable()
	if err == nil {
		err = d.commit(true)
	}
	d.closed.Store(true)
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if e := d.data.Close(); e != nil && err == nil {
		err = fmt.Errorf("overlay: %s: %w", d.name, e)
	}
	if e := d.jnl.Close(); e != nil && err == nil {
		err = fmt.Errorf("overlay: %s: %w", d.name, e)
	}
	return err
}
