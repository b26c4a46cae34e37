module github.com/strata-llm/strata

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/klauspost/compress v1.20.4
	golang.org/x/sys v0.50.0
)
