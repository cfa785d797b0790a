//go:build tools

// Package tools keeps helm's command in go.mod/go.sum.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
