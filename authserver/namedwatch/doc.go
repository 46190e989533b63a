// Package namedwatch follows one named object of a namespace through the Kubernetes API,
// as the issuer follows its signing-key Secret and its user-logouts ConfigMap: an
// informer limited to that name by a field selector (so the issuer's Role may name the
// one object it reads), calling back with every version it sees.
package namedwatch
