// Package roles is the auth server's composition root: NewVerifier and NewIssuer build
// a server of each role from a Config (keys, the session store, the services, the HTTP
// API and everything that runs beside it), and Server.Run runs it with errgroup until
// its context ends, then drains. `authserver serve`, the httpapi test harness and the
// load test all build their servers here, as Dex's do with server.NewServer.
package roles
