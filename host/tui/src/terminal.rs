//! The user's terminal while the TUI runs: raw mode and the alternate screen
//! from [`Screen::enter`], given back for the user's editor
//! ([`Screen::suspend`], [`Screen::resume`]), and restored once on every way
//! out — a return, an error, a panic (a panic hook gives it back before the
//! message is printed), and SIGTERM, SIGHUP or SIGINT (the main loop turns
//! them into a return).

use std::io::stdout;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::DefaultTerminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};

/// Whether the TUI holds the terminal now (raw mode, the alternate screen).
/// Giving it back twice would do harm: leaving the alternate screen again
/// moves the cursor back to where the TUI started, so what was printed
/// after the first time (a panic's message) would be written over.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The terminal in the TUI's hands; restored when dropped.
pub struct Screen {
    pub terminal: DefaultTerminal,
}

impl Screen {
    /// Take the terminal: raw mode, the alternate screen, a panic hook that
    /// gives it back before the panic's message is printed.
    pub fn enter() -> std::io::Result<Self> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let printing = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                printing(info);
            }));
        });
        match take().and_then(|()| ratatui::Terminal::new(CrosstermBackend::new(stdout()))) {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// Give the terminal back for a while (an editor runs in it).
    pub fn suspend(&mut self) -> std::io::Result<()> {
        restore();
        Ok(())
    }

    /// Take it again after [`Screen::suspend`], and draw everything anew.
    pub fn resume(&mut self) -> std::io::Result<()> {
        take()?;
        execute!(stdout(), terminal::Clear(terminal::ClearType::All))?;
        // A new terminal has nothing drawn, so its next frame is drawn whole
        // (`Terminal::clear` would first ask the terminal where its cursor is,
        // and an editor may have left that answer unread).
        self.terminal = ratatui::Terminal::new(CrosstermBackend::new(stdout()))?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Raw mode and the alternate screen.
fn take() -> std::io::Result<()> {
    TAKEN.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    execute!(stdout(), terminal::EnterAlternateScreen)
}

/// Leave raw mode and the alternate screen and show the cursor, once for
/// each time the terminal was taken.
fn restore() {
    if TAKEN.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    }
}
