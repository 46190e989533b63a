// Package objects holds what every object the operator makes for an AuthService has in
// common, whichever part it belongs to: its labels and selectors, the restricted security
// contexts of its pods, its Services.
package objects
