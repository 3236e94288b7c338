//! `clauderon sandbox exec`: build the sandbox described in [`crate`] and
//! run the agent in it. Four processes, one job each:
//!
//! 1. the **launcher** (the caller, still in the host's namespaces) ignores
//!    the terminal's job-control signals (Ctrl-C is for the agent), forks
//!    the owner and exits with the agent's status;
//! 2. the **owner** unshares the user, mount, PID, network, IPC and UTS
//!    namespaces, maps the user to itself and forks the init;
//! 3. the **init** (PID 1 of the sandbox) builds the view of the filesystem,
//!    brings up loopback, binds the proxy relay's listeners, forks the agent,
//!    then relays connections and reaps children until the agent exits (and
//!    what the agent left running has finished, for up to [`crate::LINGER`]);
//! 4. the **agent** resets its signals, applies Landlock with
//!    `no_new_privs`, drops every capability and execs the agent's argv.
//!
//! Each child is killed if its parent dies, and when the init exits the
//! kernel kills everything left in the sandbox. Must be called from a
//! single-threaded process (a user namespace cannot be entered otherwise).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::policy::Policy;
use crate::{SandboxError, reap, relay};

/// Where the proxy's socket directory appears inside the sandbox.
pub(crate) const SOCKET_DIR_INSIDE: &str = "/run/clauderon";

/// Exit status when the sandbox itself could not be built.
const SETUP_FAILED: i32 = 125;

/// Device nodes the sandbox's own `/dev` holds (bound from the host's).
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

type Step<T> = Result<T, SandboxError>;

/// Run `argv` in the sandbox `policy` describes; returns the agent's exit
/// status (128 + signal if it was killed). Errors are setup failures in
/// this process; failures in the children are printed by them and end in
/// status 125.
pub fn exec(policy: &Policy, argv: &[String]) -> Step<i32> {
    if argv.is_empty() {
        return Err(SandboxError::Step("sandbox: no command to run".into()));
    }
    for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP] {
        // SAFETY: setting a signal to be ignored installs no handler code.
        unsafe { signal(sig, SigHandler::SigIgn) }
            .map_err(|e| SandboxError::step("ignoring job-control signals", e))?;
    }
    // SAFETY: the caller is single-threaded (documented), so the child may
    // do anything the parent could.
    match unsafe { fork() }.map_err(|e| SandboxError::step("fork", e))? {
        ForkResult::Parent { child } => Ok(wait_status(child)),
        ForkResult::Child => std::process::exit(match owner(policy, argv) {
            Ok(code) => code,
            Err(e) => fail(e),
        }),
    }
}

fn fail(e: SandboxError) -> i32 {
    eprintln!("clauderon {e}");
    SETUP_FAILED
}

/// Wait for `pid`; its exit status as a shell would report it.
fn wait_status(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return SETUP_FAILED,
        }
    }
}

/// Die with the parent: a sandbox never outlives whoever started it. If the
/// parent (`parent`, or 0 as the init sees a parent outside its PID
/// namespace) is already gone, stop now.
fn die_with_parent(parent: Pid) -> Step<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| SandboxError::step("parent-death signal", e))?;
    if nix::unistd::getppid() != parent {
        return Err(SandboxError::Step("sandbox: the process that started it has gone".into()));
    }
    Ok(())
}

/// The namespace owner.
fn owner(policy: &Policy, argv: &[String]) -> Step<i32> {
    die_with_parent(nix::unistd::getppid())?;
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    unshare(flags).map_err(|e| {
        SandboxError::step(
            "creating namespaces (user, mount, PID, network, IPC, UTS)",
            format!("{e}; unprivileged user namespaces must be enabled (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu an AppArmor profile allowing them)"),
        )
    })?;
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
    write_file("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
    // SAFETY: still single-threaded.
    match unsafe { fork() }.map_err(|e| SandboxError::step("fork", e))? {
        ForkResult::Parent { child } => Ok(wait_status(child)),
        // The init's parent is outside its PID namespace: it sees it as 0.
        ForkResult::Child => std::process::exit(match init(policy, argv, Pid::from_raw(0)) {
            Ok(code) => code,
            Err(e) => fail(e),
        }),
    }
}

fn write_file(path: &str, text: &str) -> Step<()> {
    std::fs::write(path, text).map_err(|e| SandboxError::step(format!("writing {path}"), e))
}

/// The sandbox's PID 1.
fn init(policy: &Policy, argv: &[String], parent: Pid) -> Step<i32> {
    die_with_parent(parent)?;
    let host_name = format!("clauderon-{}", policy.session);
    let _ = nix::unistd::sethostname(&host_name[..host_name.len().min(64)]);
    build_view(policy)?;
    loopback_up()?;
    let listeners = match &policy.proxy {
        Some(link) => relay::listen(link.port)?,
        None => Vec::new(),
    };
    // Fork the agent while this process is still single-threaded.
    // SAFETY: single-threaded; the relay threads start after the fork.
    let agent_pid = match unsafe { fork() }.map_err(|e| SandboxError::step("fork", e))? {
        ForkResult::Child => {
            drop(listeners);
            let e = agent(policy, argv);
            std::process::exit(fail(e));
        }
        ForkResult::Parent { child } => child,
    };
    let socket = Path::new(SOCKET_DIR_INSIDE).join("proxy.sock");
    for listener in listeners {
        relay::serve(listener, socket.clone());
    }
    // Reap every child (orphans are re-parented to us) until the agent ends,
    // then give what it left behind its moment.
    let code = loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == agent_pid => break code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == agent_pid => break 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::step("waiting for the agent", e)),
        }
    };
    reap::leftovers(reap::LINGER);
    Ok(code)
}

/// A handle on a path that survives it being covered by another mount.
fn handle(path: &Path) -> Step<OwnedFd> {
    nix::fcntl::open(path, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| SandboxError::step(format!("opening {}", path.display()), e))
}

/// Bind what `fd` refers to onto `target`.
fn bind_fd(fd: &OwnedFd, target: &Path) -> Step<()> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    mount(Some(source.as_str()), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| SandboxError::step(format!("showing {} in the sandbox", target.display()), e))
}

fn tmpfs(target: &Path, options: &str, flags: MsFlags) -> Step<()> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options))
        .map_err(|e| SandboxError::step(format!("mounting a tmpfs on {}", target.display()), e))
}

fn mkdir_p(path: &Path) -> Step<()> {
    std::fs::create_dir_all(path).map_err(|e| SandboxError::step(format!("creating {}", path.display()), e))
}

/// Make sure `path` exists to mount what `fd` refers to on: a directory for
/// a directory, an empty file (in its directory) for anything else.
fn mount_point(path: &Path, fd: &OwnedFd) -> Step<()> {
    let is_dir = nix::sys::stat::fstat(fd)
        .map(|st| {
            nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
                == nix::sys::stat::SFlag::S_IFDIR
        })
        .map_err(|e| SandboxError::step(format!("inspecting {}", path.display()), e))?;
    if is_dir {
        return mkdir_p(path);
    }
    if let Some(parent) = path.parent() {
        mkdir_p(parent)?;
    }
    if !path.exists() {
        touch(path)?;
    }
    Ok(())
}

/// Make an empty file (a mount point for a file).
fn touch(path: &Path) -> Step<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|e| SandboxError::step(format!("creating {}", path.display()), e))
}

/// Build the filesystem the agent sees (see the crate doc).
fn build_view(policy: &Policy) -> Step<()> {
    let root = Path::new("/");
    mount(None::<&str>, root, None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| SandboxError::step("making mounts private", e))?;

    // Handles on everything that is about to be covered.
    let writable: Vec<(PathBuf, OwnedFd)> =
        policy.writable.iter().map(|p| Ok((p.clone(), handle(p)?))).collect::<Step<_>>()?;
    let readable: Vec<(PathBuf, OwnedFd)> =
        policy.readable.iter().filter(|p| p.exists()).map(|p| Ok((p.clone(), handle(p)?))).collect::<Step<_>>()?;
    let dev: Vec<(&str, OwnedFd)> = DEV_NODES
        .iter()
        .filter(|n| Path::new("/dev").join(n).exists())
        .map(|n| Ok((*n, handle(&Path::new("/dev").join(n))?)))
        .collect::<Step<_>>()?;
    let null = handle(Path::new("/dev/null"))?;
    let socket_dir = policy.proxy.as_ref().map(|l| handle(&l.socket_dir)).transpose()?;

    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // Hidden paths: an empty directory, or an empty file.
    for path in &policy.hidden {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => tmpfs(path, "mode=0755,size=1m", quiet)?,
            Ok(_) => bind_fd(&null, path)?,
            Err(_) => {}
        }
    }
    // The sandbox's own /run (sockets of the multiplexer, Docker, D-Bus, the
    // user's agents live in the host's), /tmp, /var/tmp and /dev.
    tmpfs(Path::new("/run"), "mode=0755", quiet)?;
    tmpfs(Path::new("/tmp"), "mode=1777", MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    if Path::new("/var/tmp").is_dir() {
        mount(Some("/tmp"), "/var/tmp", None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| SandboxError::step("sharing /tmp as /var/tmp", e))?;
    }
    own_dev(&dev)?;

    if let Some(fd) = &socket_dir {
        let inside = Path::new(SOCKET_DIR_INSIDE);
        mkdir_p(inside)?;
        bind_fd(fd, inside)?;
    }
    for (path, fd) in readable.iter().chain(&writable) {
        mount_point(path, fd)?;
        bind_fd(fd, path)?;
    }
    mount(Some("proc"), "/proc", Some("proc"), quiet, None::<&str>)
        .map_err(|e| SandboxError::step("mounting the sandbox's /proc", e))?;

    // Everything read-only and without setuid; then the writable places again.
    set_attr(root, true, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID, 0)?;
    let mut rw: Vec<&Path> = vec![Path::new("/tmp"), Path::new("/dev/shm"), Path::new("/dev/pts")];
    if Path::new("/var/tmp").is_dir() {
        rw.push(Path::new("/var/tmp"));
    }
    rw.extend(writable.iter().map(|(p, _)| p.as_path()));
    for path in rw {
        set_attr(path, false, 0, libc::MOUNT_ATTR_RDONLY)?;
    }
    Ok(())
}

/// The sandbox's own /dev: a few device nodes, its own ptys and shared memory.
fn own_dev(nodes: &[(&str, OwnedFd)]) -> Step<()> {
    let dev = Path::new("/dev");
    tmpfs(dev, "mode=0755", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)?;
    for (name, fd) in nodes {
        let target = dev.join(name);
        touch(&target)?;
        bind_fd(fd, &target)?;
    }
    mkdir_p(&dev.join("pts"))?;
    mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|e| SandboxError::step("mounting the sandbox's /dev/pts", e))?;
    mkdir_p(&dev.join("shm"))?;
    tmpfs(&dev.join("shm"), "mode=1777", MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(|e| SandboxError::step(format!("creating /dev/{link}"), e))?;
    }
    Ok(())
}

/// `mount_setattr(2)` on `path` (and every mount below it if `recursive`).
fn set_attr(path: &Path, recursive: bool, set: u64, clear: u64) -> Step<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| SandboxError::step("a path", e))?;
    let mut attr: libc::mount_attr = libc::mount_attr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is a valid C string and `attr` a valid mount_attr whose size is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags as libc::c_uint,
            &mut attr as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let hint = if e.raw_os_error() == Some(libc::ENOSYS) { " (the kernel is older than 5.12)" } else { "" };
        return Err(SandboxError::step(format!("setting mount attributes on {}{hint}", path.display()), e));
    }
    Ok(())
}

/// Bring up the sandbox network's loopback interface.
fn loopback_up() -> Step<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| SandboxError::step("a socket to configure loopback", e))?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, a valid ifreq
    // for "lo"; the union's flags member is the one these requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(SandboxError::step("reading loopback's flags", std::io::Error::last_os_error()));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(SandboxError::step("bringing up loopback", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The agent: restrict itself for good, then become the agent's argv.
fn agent(policy: &Policy, argv: &[String]) -> SandboxError {
    match restrict(policy) {
        Ok(()) => {}
        Err(e) => return e,
    }
    let args: Vec<CString> = match argv.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(a) => a,
        Err(e) => return SandboxError::step("the agent's command", e),
    };
    let e = nix::unistd::execvp(&args[0], &args).err().unwrap_or(nix::errno::Errno::UnknownErrno);
    SandboxError::step(format!("running `{}`", argv[0]), e)
}

fn restrict(policy: &Policy) -> Step<()> {
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: restoring the default disposition installs no handler code.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ZELLIJ") {
            // SAFETY: this process is single-threaded (a fresh fork).
            unsafe { std::env::remove_var(&key) };
        }
    }
    std::env::set_current_dir(&policy.workdir)
        .map_err(|e| SandboxError::step(format!("entering {}", policy.workdir.display()), e))?;
    landlock(policy)?;
    drop_capabilities()
}

/// Landlock: read and run anything in the (already narrowed) view, write
/// only the writable paths, the sandbox's temp dirs and a few devices; no
/// signals or abstract unix sockets outside the sandbox. `no_new_privs` too.
fn landlock(policy: &Policy) -> Step<()> {
    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
        path_beneath_rules,
    };
    let abi = ABI::V5;
    let err = |e: landlock::RulesetError| SandboxError::step("Landlock", e);
    let mut writable: Vec<PathBuf> = policy.writable.clone();
    writable.extend(["/tmp", "/var/tmp", "/dev/shm", "/dev/pts"].iter().map(PathBuf::from).filter(|p| p.exists()));
    let devices: Vec<PathBuf> = DEV_NODES
        .iter()
        .map(|n| Path::new("/dev").join(n))
        .chain([PathBuf::from("/dev/ptmx")])
        .filter(|p| p.exists())
        .collect();
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .set_compatibility(CompatLevel::BestEffort)
        .scope(Scope::from_all(ABI::V6))
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(&devices, AccessFs::from_file(abi)))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    if status.ruleset == RulesetStatus::NotEnforced || !status.no_new_privs {
        return Err(SandboxError::Step(
            "sandbox: this kernel does not enforce Landlock (Linux 5.13 or newer with Landlock enabled is needed)"
                .into(),
        ));
    }
    Ok(())
}

fn drop_capabilities() -> Step<()> {
    use caps::CapSet;
    let err = |e: caps::errors::CapsError| SandboxError::step("dropping capabilities", e);
    for cap in caps::runtime::thread_all_supported() {
        caps::drop(None, CapSet::Bounding, cap).map_err(err)?;
    }
    for set in [CapSet::Ambient, CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(err)?;
    }
    Ok(())
}
