# mailpin in a home-manager configuration: an example to adapt, imported from home.nix with
#   imports = [ ./mailpin.nix ];
#
# ILLUSTRATIVE parts are marked so: mailpin is not in nixpkgs (bring your own package, e.g. an overlay
# building this repository with python3Packages.buildPythonApplication), and the account is an example.
# The rest uses home-manager options as they exist (accounts.email, programs.msmtp/mbsync/notmuch,
# systemd.user.*, home.activation) and mirrors contrib/systemd/ unit for unit.
#
# Manual check (the test suite has no Nix): `home-manager build` with this file imported must succeed;
# after `home-manager switch`: `systemctl --user cat mailpin-mbsync.service mailpin-mbsync.timer`,
# `systemctl --user start mailpin-mbsync.service`, `mailpin doctor`, `notmuch new` (runs the pre-new check).
{ config, lib, pkgs, ... }:

let
  # ILLUSTRATIVE: your mailpin package.
  mailpin = pkgs.mailpin;
  # Where `mailpin hooks install` writes the shims of msmtp, mbsync, offlineimap, mpop, fetchmail and
  # getmail (see home.activation).
  shims = "${config.home.homeDirectory}/.local/bin";
in
{
  home.packages = [ mailpin ];

  # The shims name this mailpin by its store path: rewrite them on every switch (older home-manager:
  # $DRY_RUN_CMD instead of run).
  home.activation.mailpinShims = lib.hm.dag.entryAfter [ "writeBoundary" ] ''
    run ${mailpin}/bin/mailpin hooks install --bin ${shims}
  '';

  # ILLUSTRATIVE: one account; msmtp, mbsync and notmuch enabled for it as usual. mailpin reads the
  # configs home-manager writes (~/.config/msmtp/config, ~/.mbsyncrc or ~/.config/isyncrc).
  accounts.email.accounts.work = {
    primary = true;
    address = "you@example.org";
    userName = "you@example.org";
    realName = "You";
    passwordCommand = "pass show mail/work";
    imap = { host = "imap.example.org"; port = 993; tls.enable = true; };
    smtp = { host = "smtp.example.org"; port = 465; tls.enable = true; };
    msmtp.enable = true;
    mbsync = { enable = true; create = "maildir"; };
    notmuch.enable = true;
    # NeoMutt straight through the shim instead of home-manager's default, msmtpq.
    neomutt = { enable = true; sendMailCommand = "${shims}/msmtp --read-envelope-from"; };
  };

  programs.msmtp.enable = true;
  programs.mbsync.enable = true;
  programs.neomutt.enable = true;

  programs.notmuch = {
    enable = true;
    # What `mailpin hooks install --notmuch` prints for a read-only (home-manager) hook: verify the sync
    # accounts before notmuch indexes; a block aborts `notmuch new`. Chain your old hook after it
    # (`... --quiet && afew --tag --new`); to sync from the hook instead of the timer below, use
    # "${mailpin}/bin/mailpin run mbsync --all", which verifies exactly what it syncs.
    hooks.preNew = "${mailpin}/bin/mailpin check --sync --quiet";
  };

  # msmtpq users (home-manager's default sender for neomutt, aerc and alot): send the queue through the
  # shim. Verify first that nixpkgs' msmtpq (built with resholve) still honours MSMTP:
  #   MSMTP=/bin/false msmtpq -t </dev/null  must fail to send.
  home.sessionVariables.MSMTP = "${shims}/msmtp";
  systemd.user.sessionVariables.MSMTP = "${shims}/msmtp";

  # The sync: contrib/systemd/mailpin-mbsync.{service,timer} and mailpin-notify@.service.
  # Use these instead of services.mbsync, not beside it (two timers would sync twice).
  services.mbsync.enable = false;

  systemd.user.services.mailpin-mbsync = {
    Unit = {
      Description = "Mail sync (mbsync) through mailpin";
      Documentation = [ "man:mbsync(1)" ];
      OnFailure = [ "mailpin-notify@%n.service" ];
    };
    Service = {
      Type = "oneshot";
      # `mailpin run` runs the first mbsync on PATH that is not a shim. Everything mbsync starts needs
      # to be on this PATH too: the PassCmd (`pass` and gpg) above.
      Environment = [ "PATH=${lib.makeBinPath [ pkgs.isync pkgs.coreutils pkgs.pass pkgs.gnupg ]}" ];
      ExecStart = "${mailpin}/bin/mailpin run mbsync -a";
      TimeoutStartSec = "15min";
    };
  };

  systemd.user.timers.mailpin-mbsync = {
    Unit.Description = "Sync mail every five minutes (mbsync through mailpin)";
    Timer = {
      OnCalendar = "*:0/5";
      Persistent = true;
    };
    Install.WantedBy = [ "timers.target" ];
  };

  # ILLUSTRATIVE: fetching over POP3 instead (mpop, fetchmail or getmail: contrib/systemd/ has a unit
  # pair for each). For getmail, home-manager's own timer (services.getmail) runs getmail bare: turn it
  # off and run it through mailpin, naming each rc file home-manager writes in ~/.getmail with -r.
  # fetchmail users: no `set daemon` / `fetchmail -d` — mailpin refuses daemon mode; this timer polls.
  systemd.user.services.mailpin-mpop = {
    Unit = {
      Description = "Fetch mail (mpop) through mailpin";
      Documentation = [ "man:mpop(1)" ];
      OnFailure = [ "mailpin-notify@%n.service" ];
    };
    Service = {
      Type = "oneshot";
      Environment = [ "PATH=${lib.makeBinPath [ pkgs.mpop pkgs.coreutils pkgs.pass pkgs.gnupg ]}" ];
      ExecStart = "${mailpin}/bin/mailpin run mpop -a -Q";
      TimeoutStartSec = "15min";
    };
  };

  systemd.user.timers.mailpin-mpop = {
    Unit.Description = "Fetch mail every five minutes (mpop through mailpin)";
    Timer = {
      OnCalendar = "*:0/5";
      Persistent = true;
    };
    Install.WantedBy = [ "timers.target" ];
  };

  systemd.user.services."mailpin-notify@" = {
    Unit.Description = "Tell the desktop that %i failed";
    Service = {
      Type = "oneshot";
      ExecStart = "${pkgs.writeShellScript "mailpin-notify" ''
        ${mailpin}/bin/mailpin check --sync --quiet
        case $? in 69|75) exit 0 ;; esac  # a block or "could not verify": mailpin told it already
        exec ${pkgs.libnotify}/bin/notify-send --app-name=mailpin --urgency=critical \
          "$1 failed" "Not a TLS block: journalctl --user -u $1"
      ''} %i";
    };
  };
}
