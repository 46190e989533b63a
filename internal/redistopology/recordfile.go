package redistopology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadRecord reads the record a Redis pod wrote on its volume; nil when there is none or it
// cannot be read whole.
func ReadRecord(path string) *Record {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	r, ok := DecodeRecord(string(raw))
	if !ok {
		return nil
	}
	return &r
}

// WriteRecord writes r to path durably: a temporary file beside it, synced, renamed over it,
// and the directory synced, so that after a crash the file holds this record or the one
// before, never part of one.
func WriteRecord(path string, r Record) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".record-*")
	if err != nil {
		return fmt.Errorf("writing the topology record: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(r.Encode())
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing the topology record: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	return d.Sync()
}

// HasData reports whether a Redis data directory holds data: a non-empty file of its AOF
// (appendonlydir) or an RDB snapshot.
func HasData(dataDir string) bool {
	found := false
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(dataDir, path)
		if d.Type().IsRegular() && (filepath.Dir(rel) == "appendonlydir" || filepath.Ext(rel) == ".rdb" || filepath.Ext(rel) == ".aof") {
			if info, err := d.Info(); err == nil && info.Size() > 0 {
				found = true
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found
}
