package ovf

// DiskFiles joins each Disk with the File holding its image, in DiskSection
// order: what the mount offers as raw disk views. Disks without a fileRef
// (blank disks to be created) or whose fileRef names no File are left out;
// Parse has warned about the latter.
func (e *Envelope) DiskFiles() []DiskFile {
	files := make(map[string]File, len(e.Files))
	for _, f := range e.Files {
		if _, dup := files[f.ID]; !dup {
			files[f.ID] = f
		}
	}
	var out []DiskFile
	for _, d := range e.Disks {
		if f, ok := files[d.FileRef]; ok && d.FileRef != "" {
			out = append(out, DiskFile{Disk: d, File: f})
		}
	}
	return out
}
