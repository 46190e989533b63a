// Package controlplane holds nothing but the go.mod that pins the upstream control-plane
// binaries; each one is a main package in a sub-folder.
package controlplane
