// Command authserver serves logout, forward-auth and the JWKS, and generates keys and tokens for local runs.
package main
