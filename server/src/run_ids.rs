//! How a caller names a run: its full id, or a unique prefix of at least 8 hex digits (the
//! dashboard and the CLI show 8-character ids). Parsing here, resolving the prefix among the
//! runs the caller can read, and [`readable`], the one lookup that GraphQL's `run(id:)` and the
//! run report share; the runs themselves live in `runs.rs`.
use crate::error::{ApiError, ApiResult};
use crate::identity::{Principal, Role};
use crate::runs::RunRow;
use sqlx::PgPool;
use uuid::Uuid;

/// The fewest hex digits a prefix may have: what the dashboard shows.
pub const MIN_PREFIX: usize = 8;

/// A run named by its id or by a prefix of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunRef {
    Id(Uuid),
    /// The lowest and highest ids with the prefix (a range the primary key index answers), and
    /// the prefix as given, for messages.
    Prefix {
        lo: Uuid,
        hi: Uuid,
        text: String,
    },
}

impl RunRef {
    /// `field` names the argument in errors.
    pub fn parse(field: &str, s: &str) -> Result<RunRef, ApiError> {
        let s = s.trim();
        if let Ok(id) = s.parse::<Uuid>() {
            return Ok(RunRef::Id(id));
        }
        let bad = |why: &str| ApiError::bad(field, format!("{s:?} is not a run id: {why}"));
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("give a run id or a prefix of one (hex digits)"));
        }
        // Dashes only where a UUID has them.
        let dashes_ok = s
            .char_indices()
            .filter(|(_, c)| *c == '-')
            .all(|(i, _)| [8, 13, 18, 23].contains(&i));
        if !dashes_ok || hex.len() > 32 {
            return Err(bad("give a run id or a prefix of one (hex digits)"));
        }
        if hex.len() < MIN_PREFIX {
            return Err(bad(&format!(
                "a prefix needs at least {MIN_PREFIX} hex digits"
            )));
        }
        let hex = hex.to_ascii_lowercase();
        let pad = |c: char| {
            let h = format!("{hex}{}", c.to_string().repeat(32 - hex.len()));
            Uuid::parse_str(&h).expect("32 hex digits")
        };
        Ok(RunRef::Prefix {
            lo: pad('0'),
            hi: pad('f'),
            text: s.to_ascii_lowercase(),
        })
    }

    /// The run's id. A prefix is looked up among the runs of the `scope` projects (`None`:
    /// every project); none is not found, more than one is refused as ambiguous (naming
    /// `field`).
    pub async fn resolve(
        &self,
        pool: &PgPool,
        scope: Option<&[Uuid]>,
        field: &str,
    ) -> ApiResult<Uuid> {
        let (lo, hi, text) = match self {
            RunRef::Id(id) => return Ok(*id),
            RunRef::Prefix { lo, hi, text } => (lo, hi, text),
        };
        let ids: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM runs WHERE id BETWEEN $1 AND $2 \
             AND ($3::uuid[] IS NULL OR project_id = ANY($3)) ORDER BY id LIMIT 2",
        )
        .bind(lo)
        .bind(hi)
        .bind(scope)
        .fetch_all(pool)
        .await?;
        match ids.as_slice() {
            [] => Err(ApiError::NotFound(format!("run {text}"))),
            [(id,)] => Ok(*id),
            _ => Err(ApiError::bad(
                field,
                format!("run id prefix {text:?} matches more than one run: give more digits"),
            )),
        }
    }
}

/// The run `text` names (an id or a prefix), if the caller may read it: a prefix is resolved
/// among the runs of the projects the caller can see, and a run in a project where the caller
/// has no role is "not found", like a run that does not exist. `field` names the argument.
pub async fn readable(pool: &PgPool, p: &Principal, text: &str, field: &str) -> ApiResult<RunRow> {
    let id = match RunRef::parse(field, text)? {
        RunRef::Id(id) => id,
        prefix => {
            let scope = p.visible(pool).await?;
            prefix.resolve(pool, scope.as_deref(), field).await?
        }
    };
    let run = crate::runs::get(pool, None, id).await?;
    p.require_on(pool, run.project_id, Role::Viewer, &format!("run {id}"))
        .await?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ids_and_prefixes_parse() {
        let id = Uuid::new_v4();
        assert_eq!(
            RunRef::parse("id", &id.to_string()).unwrap(),
            RunRef::Id(id)
        );
        let RunRef::Prefix { lo, hi, text } = RunRef::parse("id", "1234ABCD").unwrap() else {
            panic!("a prefix")
        };
        assert_eq!(lo.to_string(), "1234abcd-0000-0000-0000-000000000000");
        assert_eq!(hi.to_string(), "1234abcd-ffff-ffff-ffff-ffffffffffff");
        assert_eq!(text, "1234abcd");
        let RunRef::Prefix { lo, .. } = RunRef::parse("id", "1234abcd-12").unwrap() else {
            panic!("a prefix with its dash")
        };
        assert_eq!(lo.to_string(), "1234abcd-1200-0000-0000-000000000000");
    }

    #[test]
    fn short_or_non_hex_prefixes_are_refused_naming_the_field() {
        for bad in ["1234abc", "", "xyz12345", "1234-abcd", "1234abcd-"] {
            let e = RunRef::parse("id", bad);
            // A trailing dash at a UUID position is harmless; everything else is refused.
            if bad == "1234abcd-" {
                assert!(e.is_ok(), "{bad}");
                continue;
            }
            let e = e.unwrap_err().to_string();
            assert!(e.starts_with("id: "), "{bad}: {e}");
        }
        let e = RunRef::parse("id", "1234abc").unwrap_err().to_string();
        assert!(e.contains("at least 8 hex digits"), "{e}");
    }
}
