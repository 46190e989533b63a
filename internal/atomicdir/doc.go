// Package atomicdir writes a directory the way the kubelet writes a Secret or ConfigMap
// volume: a timestamped folder swapped in through a "..data" symlink, so a reader sees
// either the whole old content or the whole new content.
package atomicdir
