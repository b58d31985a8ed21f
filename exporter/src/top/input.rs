//! Keys → actions. While the filter is being typed every printable key is
//! part of it; Enter keeps it, Esc clears it.
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks of the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    CloseHelp,
    NextPane,
    PreviousPane,
    NextSort,
    ReverseSort,
    /// Move the selection by this many rows.
    Move(isize),
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    EndFilter,
    ClearFilter,
    None,
}

/// Rows a page key moves.
const PAGE: isize = 10;

pub fn action(key: KeyEvent, editing_filter: bool, help: bool) -> Action {
    // Key releases and repeats (reported by some terminals) are not presses.
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    // Raw mode turns Ctrl-C into a key: it quits as SIGINT would.
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Action::Quit;
    }
    if editing_filter {
        return match key.code {
            KeyCode::Enter => Action::EndFilter,
            KeyCode::Esc => Action::ClearFilter,
            KeyCode::Backspace => Action::FilterBackspace,
            KeyCode::Char(c) => Action::FilterChar(c),
            _ => Action::None,
        };
    }
    if help {
        return match key.code {
            KeyCode::Char('q') => Action::Quit,
            _ => Action::CloseHelp,
        };
    }
    match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') | KeyCode::Char('h') => Action::Help,
        KeyCode::Tab | KeyCode::Right => Action::NextPane,
        KeyCode::BackTab | KeyCode::Left => Action::PreviousPane,
        KeyCode::Char('s') => Action::NextSort,
        KeyCode::Char('r') => Action::ReverseSort,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Esc => Action::ClearFilter,
        KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
        KeyCode::PageUp => Action::Move(-PAGE),
        KeyCode::PageDown => Action::Move(PAGE),
        KeyCode::Home => Action::Move(isize::MIN / 2),
        KeyCode::End => Action::Move(isize::MAX / 2),
        _ => Action::None,
    }
}
