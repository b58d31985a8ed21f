//! The terminal while `top` runs: raw mode and the alternate screen, put
//! back on every way out (return, error, panic; SIGTERM/SIGINT end the loop
//! and so return). Log lines written while the screen is taken would tear
//! it: they are kept for the footer instead, and go to stderr again after.
use std::{
    io::{self, Stdout, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        cursor,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
        ExecutableCommand,
    },
    Terminal,
};

use crate::sync::lock;

static SCREEN_TAKEN: AtomicBool = AtomicBool::new(false);
static LAST_LOG: Mutex<Option<String>> = Mutex::new(None);

/// The screen, restored when dropped.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Takes the terminal: raw mode, alternate screen, hidden cursor, and a
    /// panic hook that restores it before the panic message is printed.
    pub fn take() -> io::Result<Self> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        SCREEN_TAKEN.store(true, Ordering::SeqCst);
        // From here on a failure restores what was done (the guard exists).
        let mut stdout = io::stdout();
        let guard = Restore;
        stdout.execute(EnterAlternateScreen)?;
        stdout.execute(cursor::Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(stdout))?;
        std::mem::forget(guard);
        Ok(Self { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Restores on drop: covers a failure half way through [`Screen::take`].
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode; does nothing the second time.
pub fn restore() {
    if !SCREEN_TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut stdout = io::stdout();
    // Best effort: the terminal may be gone (a closed pty); nothing to do then.
    let _ = stdout.execute(cursor::Show);
    let _ = stdout.execute(LeaveAlternateScreen);
    let _ = terminal::disable_raw_mode();
    let _ = stdout.flush();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
        // A panic on any thread ends `top`: the screen is gone already.
        std::process::exit(101);
    }));
}

/// The last log line written while the screen was taken (for the footer).
pub fn last_log() -> Option<String> {
    lock(&LAST_LOG).clone()
}

/// The log writer of `top`: stderr, but kept for the footer while the screen is taken.
#[derive(Clone, Copy, Default)]
pub struct LogSink;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log line, written out when the logger drops it.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if SCREEN_TAKEN.load(Ordering::SeqCst) {
            let line = String::from_utf8_lossy(&self.0).trim().to_owned();
            *lock(&LAST_LOG) = Some(line);
        } else {
            // Nowhere else to report a failed log write.
            let _ = io::stderr().write_all(&self.0);
        }
    }
}
