package imagebuild

import (
	"bytes"
	"fmt"
	"path"
)

// Merge joins lists of entries into one, keeping one copy of an entry two lists share
// (two programs that need one library) and refusing two different entries at one path.
func Merge(lists ...[]Entry) ([]Entry, error) {
	byPath := map[string]Entry{}
	var out []Entry
	for _, list := range lists {
		for _, e := range list {
			p := path.Clean(e.Path)
			if prev, ok := byPath[p]; ok {
				if !sameEntry(prev, e) {
					return nil, fmt.Errorf("two different entries for %s", p)
				}
				continue
			}
			byPath[p] = e
			out = append(out, e)
		}
	}
	return out, nil
}

func sameEntry(a, b Entry) bool {
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.Source == b.Source &&
		a.Link == b.Link && bytes.Equal(a.Data, b.Data)
}

// Users is /etc/passwd and /etc/group with root and one unprivileged user, whose home is
// home and whose login shell is none.
func Users(name string, id int, home string) []Entry {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", name, id, id, name, home)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", name, id)
	return []Entry{File("/etc/passwd", 0o644, []byte(passwd)), File("/etc/group", 0o644, []byte(group))}
}
