// Package devkeys writes signing-key sets to disk for local runs and tests: a plain folder
// (`authserver keys generate`, test/load) or a folder updated the way the kubelet updates a
// mounted Secret, so that a running server sees a rotation as in a cluster. The product
// never writes keys to disk; the operator keeps them in Secrets.
package devkeys
