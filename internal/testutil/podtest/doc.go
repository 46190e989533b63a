// Package podtest checks what the operator's builders put into pod templates: the
// restricted security contexts, selectors, volumes and command-line flags.
package podtest
