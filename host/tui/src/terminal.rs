//! The user's terminal while the TUI runs: raw mode and the alternate screen
//! from [`Screen::enter`], given back for an attach ([`Screen::suspend`],
//! [`Screen::resume`]), and restored on every way out — a return, an error,
//! a panic (ratatui's panic hook), and SIGTERM, SIGHUP or SIGINT (the main
//! loop turns them into a return).

use std::io::stdout;

use ratatui::DefaultTerminal;
use ratatui::crossterm::{cursor, execute, terminal};

/// The terminal in the TUI's hands; restored when dropped.
pub struct Screen {
    pub terminal: DefaultTerminal,
}

impl Screen {
    /// Take the terminal: raw mode, the alternate screen, a panic hook that restores it.
    pub fn enter() -> std::io::Result<Self> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// Give the terminal back for a while (an attach runs in it).
    pub fn suspend(&mut self) -> std::io::Result<()> {
        ratatui::try_restore()?;
        execute!(stdout(), cursor::Show)
    }

    /// Take it again after [`Screen::suspend`], and draw everything anew.
    pub fn resume(&mut self) -> std::io::Result<()> {
        terminal::enable_raw_mode()?;
        execute!(stdout(), terminal::EnterAlternateScreen, terminal::Clear(terminal::ClearType::All))?;
        // A new terminal has nothing drawn, so its next frame is drawn whole
        // (`Terminal::clear` would first ask the terminal where its cursor is,
        // and an attach command may have left that answer unread).
        self.terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(stdout()))?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave raw mode and the alternate screen, and show the cursor.
fn restore() {
    ratatui::restore();
    let _ = execute!(stdout(), cursor::Show);
}
