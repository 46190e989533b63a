// Package main is the auth-operator manager: it runs the AuthService controller.
package main
