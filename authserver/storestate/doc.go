// Package storestate records the blacklist store's generation, and any loss of its
// data, in the ConfigMap the operator reads (CONTRACT: NAME-store-state).
package storestate
