// Command kubectl-authsvc is the kubectl plugin of the auth-operator (`kubectl authsvc`): it
// shows an AuthService's keys and readiness, asks for a rotation and waits for the new key,
// and revokes a compromised key after showing what the revocation affects.
package main
