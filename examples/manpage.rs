//! Writes the manual pages of `fehlzeiten` (section 8) from the clap definitions, so that they
//! never drift from `--help`: `fehlzeiten.8` with the global options, the list of commands and
//! the files the package installs, and one `fehlzeiten-<command>.8` per command (and
//! `fehlzeiten-silence-add.8` etc. for nested ones).
//!
//!     cargo run --example manpage -- OUT_DIR
//!
//! `scripts/package-test` runs it into `$CARGO_TARGET_DIR/release/man`, gzips the pages and
//! runs `cargo deb`, which puts them into /usr/share/man/man8/. Not installed itself. The date
//! of the pages is that of the newest entry in packaging/debian/changelog.

use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

const SECTION: &str = "8";

/// Appended to the description that clap gives.
const DESCRIPTION: &str = r#".PP
School IT installs it as a Debian package; systemd runs \fBfehlzeiten run\fR as the service
fehlzeiten. Logs go to the journal: \fBjournalctl \-u fehlzeiten\fR.
"#;

/// Hand-written sections of `fehlzeiten.8` about the installed package; what the command line
/// accepts always comes from clap.
const PACKAGE_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/fehlzeiten/fehlzeiten.toml\fR
The config file (mode 0640, owner root, group fehlzeiten). The package installs it fully
commented; \fBfehlzeiten check\-config\fR prints every problem in it.
.TP
\fI/etc/fehlzeiten/*.secret\fR
Passwords named by the config's \fBpassword_file\fR keys; owned by the user fehlzeiten, mode
0600 (group\- or world\-readable files are refused). Alternatively systemd credentials:
\fBpassword_credential\fR with \fBLoadCredential=\fR in a drop\-in (\fBsystemctl edit fehlzeiten\fR).
.TP
\fI/var/lib/fehlzeiten/\fR
The database (redb). Removed when the package is purged.
.TP
\fI/run/fehlzeiten/admin.sock\fR
The running daemon's admin socket (mode 0660, group fehlzeiten), used by \fBsync\fR and
\fBsilence\fR.
.TP
\fI/usr/lib/systemd/system/fehlzeiten.service\fR
The hardened systemd unit; it runs \fBfehlzeiten check\-config\fR, then \fBfehlzeiten run\fR as
the user fehlzeiten.
.SH ENVIRONMENT
.TP
\fBFEHLZEITEN_CONFIG\fR
The config file when \fB\-\-config\fR is not given.
.TP
\fBCREDENTIALS_DIRECTORY\fR
Set by systemd; where \fBpassword_credential\fR names are read from.
.SH "EXIT STATUS"
0 on success; 1 on any failure, with a one\-line reason on standard error.
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.exec\fR(5)
"#;

/// The date of the newest entry of the package's changelog (`YYYY-MM-DD`): the pages change
/// with a release, not with the day they were built (reproducible builds).
fn release_date() -> std::io::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/changelog");
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(" -- ")?
                .split_once(">  ")
                .map(|(_, date)| date.trim())
        })
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "{}: no ` -- name <mail>  date` line",
                path.display()
            ))
        })
}

fn man(cmd: clap::Command, date: &str) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .section(SECTION)
        .date(date)
        .source(concat!("fehlzeiten ", env!("CARGO_PKG_VERSION")))
        .manual("System Administration")
}

/// Whether a line belongs to the two-line preamble that every clap_mangen render call starts with.
fn is_preamble(line: &str) -> bool {
    line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")
}

/// Every page as (file name, roff text).
pub fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let date = release_date()?;
    let mut root = fehlzeiten::cli::Cli::command().disable_help_subcommand(true);
    root.build();
    let man = man(root.clone(), &date);
    type Render = fn(&clap_mangen::Man, &mut dyn Write) -> std::io::Result<()>;
    let render = |f: Render| -> std::io::Result<String> {
        let mut out = Vec::new();
        f(&man, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    let mut parts = vec![
        render(clap_mangen::Man::render_title)?,
        render(clap_mangen::Man::render_name_section)?,
        render(clap_mangen::Man::render_synopsis_section)?,
        render(clap_mangen::Man::render_description_section)?,
        DESCRIPTION.to_string(),
        render(clap_mangen::Man::render_options_section)?,
        render(clap_mangen::Man::render_subcommands_section)?,
        PACKAGE_SECTIONS.to_string(),
        render(clap_mangen::Man::render_version_section)?,
    ];
    // Keep the preamble once, at the top.
    for part in parts.iter_mut().skip(1) {
        *part = part
            .lines()
            .filter(|l| !is_preamble(l))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    let mut pages = vec![(man.get_filename(), parts.concat().into_bytes())];
    subcommand_pages(&root, &date, &mut pages)?;
    Ok(pages)
}

fn subcommand_pages(
    cmd: &clap::Command,
    date: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = man(sub.clone(), date);
        let mut text = Vec::new();
        man.render(&mut text)?;
        text.write_all(b".SH \"SEE ALSO\"\n\\fBfehlzeiten\\fR(8)\n")?;
        pages.push((man.get_filename(), text));
        subcommand_pages(sub, date, pages)?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: manpage OUT_DIR");
        return std::process::ExitCode::FAILURE;
    };
    let dir = Path::new(&dir);
    let written = pages().and_then(|pages| {
        std::fs::create_dir_all(dir)?;
        for (name, text) in &pages {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(pages.len())
    });
    match written {
        Ok(n) => {
            println!("wrote {n} manual pages into {}", dir.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("manpage: cannot write into {}: {e}", dir.display());
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn all_commands(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            out.push(sub.clone());
            all_commands(sub, out);
        }
    }

    /// A new command, option or flag in src/cli.rs appears in the pages without anybody
    /// touching them; this fails if the generator ever stops following clap.
    #[test]
    fn every_command_and_option_is_in_the_pages() {
        let pages = pages().unwrap();
        let page = |name: &str| -> String {
            let (_, text) = pages
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no page {name}"));
            String::from_utf8(text.clone()).unwrap()
        };
        let mut root = fehlzeiten::cli::Cli::command().disable_help_subcommand(true);
        root.build();
        let main = page("fehlzeiten.8");
        assert!(main.contains("\n.TH fehlzeiten 8 "), "{main}");
        assert_eq!(main.matches(".el .ds Aq").count(), 1, "{main}");
        let mut commands = Vec::new();
        all_commands(&root, &mut commands);
        assert!(commands.len() >= 10, "{} commands", commands.len());
        for cmd in &commands {
            let display = cmd.get_display_name().unwrap().to_string();
            let text = page(&format!("{display}.8"));
            assert!(text.contains(&format!(".TH {display} 8 ")), "{display}");
            // Each option of the command is documented on its page (roff escapes `-`).
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(text.contains(&roff), "{display}: --{long} missing");
                }
            }
        }
        // fehlzeiten.8 lists each top-level command with its page.
        for sub in root.get_subcommands() {
            let reference = format!("fehlzeiten\\-{}(8)", sub.get_name().replace('-', "\\-"));
            assert!(main.contains(&reference), "fehlzeiten.8 lacks {reference}");
        }
        for section in ["FILES", "ENVIRONMENT", "SEE ALSO", "SYNOPSIS", "OPTIONS"] {
            assert!(
                main.contains(&format!(".SH {section}"))
                    || main.contains(&format!(".SH \"{section}\"")),
                "{section}"
            );
        }
        assert_eq!(pages.len(), commands.len() + 1);
    }
}
