package server

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/onecloud-edu/onecloud/noded/verify"
)

// NewAttestationStore is the verifier's store of one server node, for the
// tests of the compare-and-swap between two of them.
func NewAttestationStore(kv clientv3.KV) verify.Store {
	st, err := newState(kv)
	if err != nil {
		panic(err)
	}
	return attestationStore{st: st.attestations, revs: &revisions{m: map[string]int64{}}}
}
