//! `faultline user …`: adds users and sets passwords straight in the database, for the first
//! users and to recover access without a running hub.
use crate::{
    config::{DbArgs, UserCmd},
    db,
    identity::{passwords, sessions, users, Role},
};

pub async fn run(cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            db,
            email,
            name,
            role,
            project,
            password_stdin,
        } => {
            let pool = connect(&db).await?;
            let admin = role == "admin";
            let role = if admin {
                None
            } else {
                Some(Role::parse("--role", &role).map_err(|e| anyhow::anyhow!("{e} or admin"))?)
            };
            let (password, generated) = if password_stdin {
                (read_password()?, false)
            } else {
                (passwords::generate(), true)
            };
            let user = users::create(&pool, &email, &name, Some(&password), admin).await?;
            if let Some(r) = role {
                let pid = db::project_id(&pool, &project).await?;
                users::set_member(&pool, pid, &user.email, r).await?;
                println!("user {} added as {} of {project}", user.email, r.as_str());
            } else {
                println!("user {} added as an instance administrator", user.email);
            }
            if generated {
                println!("password: {password}");
                println!("(shown only now; the hub stores only its argon2id hash)");
            }
            Ok(())
        }
        UserCmd::SetPassword { db, email } => {
            let pool = connect(&db).await?;
            let user = users::by_email(&pool, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user with email {email}"))?;
            users::set_password(&pool, user.id, &read_password()?).await?;
            let ended = sessions::revoke_all(&pool, user.id).await?;
            println!("password of {} set; {ended} session(s) ended", user.email);
            Ok(())
        }
    }
}

async fn connect(db: &DbArgs) -> anyhow::Result<sqlx::PgPool> {
    let url = db
        .database_url
        .as_ref()
        .map(|u| u.0.clone())
        .ok_or_else(|| {
            anyhow::anyhow!("set DATABASE_URL (or --database-url) to the hub's database")
        })?;
    let pool = db::connect(&url, 2, std::time::Duration::from_secs(10)).await?;
    db::migrate(&pool).await?;
    Ok(pool)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    passwords::check_new(&p).map_err(|m| anyhow::anyhow!("password {m}"))?;
    Ok(p)
}
