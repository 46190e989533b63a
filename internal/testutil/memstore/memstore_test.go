package memstore_test

import (
	"testing"

	"github.com/hiringo/auth-operator/internal/testutil/memstore"
	"github.com/hiringo/auth-operator/internal/testutil/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memstore.New(nil) })
}
