//go:build tools

// Package tools keeps etcd's server command in go.mod/go.sum.
package tools

import _ "go.etcd.io/etcd/server/v3"
