package blacklist

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrCannotPublish is returned by CheckPublish when the Redis user may not publish on
// the revocation channel: logouts are still stored, but other replicas' verify caches
// and key sets would not hear of them.
var ErrCannotPublish = errors.New("the Redis user may not PUBLISH on the revocation channel")

// publishProbe is the message CheckPublish sends; followers find nothing under it.
const publishProbe = "probe:publish"

// CheckPublish publishes a probe on RevocationChannel to check the Redis user's
// channel rights (an ACL user needs &<prefix>revocations). It returns an error
// wrapping ErrCannotPublish, naming the channel and the fix, when Redis refuses; one
// wrapping ErrUnavailable when Redis cannot be reached.
func (s *Store) CheckPublish(ctx context.Context) error {
	err := s.client.Publish(ctx, s.RevocationChannel(), publishProbe).Err()
	switch {
	case err == nil:
		return nil
	case strings.HasPrefix(err.Error(), "NOPERM"):
		return fmt.Errorf("%w %s (grant it with ACL SETUSER <user> &%s): %w", ErrCannotPublish, s.RevocationChannel(), s.RevocationChannel(), err)
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}
