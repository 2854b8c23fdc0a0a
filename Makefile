# Developer shortcuts. The README's two commands are deploy/quickstart.sh and scripts/test.sh.
.PHONY: fmt clippy test bench bench-scale fuzz quickstart schema

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

test:
	./scripts/test.sh

bench-scale:
	scripts/bench-scale.sh

bench:
	cargo build --release --workspace --bins
	target/release/faultline-bench --runs 200 --streams 1000
	target/release/faultline-bench-gitops --templates 500

# Every fuzz target for 60 s (nightly + cargo-fuzz; not part of CI).
fuzz:
	./scripts/fuzz.sh 60

quickstart:
	./deploy/quickstart.sh

# Rewrites docs/template.schema.json (a test fails while it is stale), then prints the GraphQL SDL.
schema:
	cargo run -q -p faultline -- schema template > docs/template.schema.json
	cargo run -q -p faultline -- schema graphql
