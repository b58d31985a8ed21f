//! A terminal for tests of full-screen programs: a tmux server of its own,
//! a pane 200 × 60, keys sent and the screen read as text.
use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

/// A tmux server of its own (`-L`), killed with everything in it on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(command: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tmux = Self {
            socket: format!("bpf-top-test-{}-{nanos}", std::process::id()),
        };
        let out = tmux.run(&["new-session", "-d", "-x", "200", "-y", "60", command]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux (apt-get install tmux)")
    }

    /// Types `keys` (tmux key names: Enter, Escape ... or literal text with `-l`).
    pub fn keys(&self, keys: &[&str]) {
        let out = self.run(&[&["send-keys"][..], keys].concat());
        assert!(out.status.success(), "tmux send-keys {keys:?}");
    }

    pub fn text(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// Waits (up to 30 s) until the pane's text satisfies `done`; returns it.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Kills the pane's shell and anything still running in it (SIGHUP).
        let _ = self.run(&["kill-server"]);
    }
}
