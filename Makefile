# Developer shortcuts. The README's two commands are deploy/quickstart.sh and scripts/test.sh.
.PHONY: fmt clippy test bench quickstart schema

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

test:
	./scripts/test.sh

bench:
	cargo build --release --workspace --bins
	target/release/faultline-bench --runs 200 --streams 1000

quickstart:
	./deploy/quickstart.sh

schema:
	cargo run -q -p faultline -- schema graphql
