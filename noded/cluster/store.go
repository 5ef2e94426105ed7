package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prefix is the root of every key onecloud writes. The version segment lets
// a later release migrate records by writing a new tree beside the old one.
const Prefix = "/onecloud/v1/"

var (
	// ErrNotFound: no record under that name.
	ErrNotFound = errors.New("no such record")
	// ErrConflict: a CAS lost against a concurrent write; read again, redo
	// the change, retry.
	ErrConflict = errors.New("record changed since it was read")
)

// Record is a stored value with its name and revision (etcd's mod revision:
// it changes at every write, and CAS takes it back).
type Record[T any] struct {
	Name     string
	Value    T
	Revision int64
}

// Store keeps records of one type as JSON under Prefix + collection + "/".
type Store[T any] struct {
	kv     clientv3.KV
	prefix string
}

// NewStore returns the store of collection (e.g. "machines", "inventory"),
// lower-case letters, digits and '-'.
func NewStore[T any](kv clientv3.KV, collection string) (*Store[T], error) {
	if collection == "" || strings.Trim(collection, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return nil, fmt.Errorf("collection name %q: use lower-case letters, digits and '-'", collection)
	}
	return &Store[T]{kv: kv, prefix: Prefix + collection + "/"}, nil
}

// Key is the etcd key of a record.
func (s *Store[T]) Key(name string) string { return s.prefix + name }

// checkName keeps names to one path segment of printable characters, so a
// name can never reach into another collection.
func checkName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("record name %q: use 1 to 253 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:@-", c)) {
			return fmt.Errorf("record name %q: use letters, digits, '.', '_', ':', '@' and '-'", name)
		}
	}
	return nil
}

// Get reads a record; ErrNotFound when absent.
func (s *Store[T]) Get(ctx context.Context, name string) (T, int64, error) {
	var v T
	if err := checkName(name); err != nil {
		return v, 0, err
	}
	resp, err := s.kv.Get(ctx, s.Key(name))
	if err != nil {
		return v, 0, fmt.Errorf("read %s: %w", s.Key(name), err)
	}
	if len(resp.Kvs) == 0 {
		return v, 0, fmt.Errorf("%s: %w", s.Key(name), ErrNotFound)
	}
	kv := resp.Kvs[0]
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, 0, fmt.Errorf("record %s is corrupt (rewrite it with Put): %w", s.Key(name), err)
	}
	return v, kv.ModRevision, nil
}

// Put writes a record whatever its current revision and returns the new one.
func (s *Store[T]) Put(ctx context.Context, name string, v T) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", s.Key(name), err)
	}
	resp, err := s.kv.Put(ctx, s.Key(name), string(data))
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", s.Key(name), err)
	}
	return resp.Header.Revision, nil
}

// CAS writes a record only if its revision is still rev (0: only if it does
// not exist) and returns the new revision; ErrConflict otherwise.
func (s *Store[T]) CAS(ctx context.Context, name string, v T, rev int64) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", s.Key(name), err)
	}
	key := s.Key(name)
	// An absent key compares as mod revision 0, which makes rev 0 "create".
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%s (expected revision %d): %w", key, rev, ErrConflict)
	}
	return resp.Header.Revision, nil
}

// Delete removes a record if its revision is still rev (0: whatever it is);
// ErrNotFound when absent, ErrConflict when changed.
func (s *Store[T]) Delete(ctx context.Context, name string, rev int64) error {
	if err := checkName(name); err != nil {
		return err
	}
	key := s.Key(name)
	txn := s.kv.Txn(ctx)
	if rev != 0 {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	}
	resp, err := txn.Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s (expected revision %d): %w", key, rev, ErrConflict)
	}
	if resp.Responses[0].GetResponseDeleteRange().Deleted == 0 {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return nil
}

// List returns every record of the collection, sorted by name. A corrupt
// record is an error naming it rather than a silent gap.
func (s *Store[T]) List(ctx context.Context) ([]Record[T], error) {
	resp, err := s.kv.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.prefix, err)
	}
	out := make([]Record[T], 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r := Record[T]{Name: strings.TrimPrefix(string(kv.Key), s.prefix), Revision: kv.ModRevision}
		if err := json.Unmarshal(kv.Value, &r.Value); err != nil {
			return nil, fmt.Errorf("record %s is corrupt (rewrite it with Put): %w", kv.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
