;;; mailpin.el --- Emacs message-mode, notmuch-emacs and mu4e: send through mailpin's msmtp shim
;;
;; Put in your init file, or (load "/path/to/mailpin.el").
;;
;; `message-send-mail-with-sendmail' runs `sendmail-program' without a shell as
;;   PROGRAM -oi --read-envelope-from -t
;; (-oi, then `message-sendmail-extra-arguments', no -f because `message-sendmail-f-is-evil',
;; then -t); msmtp, and mailpin, read the recipients and the account (by From) from the message.
;; No shell means no ~: `expand-file-name' makes the path absolute.  A block stops the send
;; ("Sending...failed with exit value 69", mailpin's one-line reason in the error buffer);
;; mailpin holds the message (`mailpin queue').
;; notmuch-emacs: `G' (notmuch-poll) runs `notmuch new', so its pre-new hook
;; (`mailpin hooks install --notmuch') checks the sync accounts; a block there pops up *Notmuch errors*.

(setq sendmail-program (expand-file-name "~/.local/bin/msmtp")
      message-send-mail-function #'message-send-mail-with-sendmail
      send-mail-function #'sendmail-send-it
      message-sendmail-f-is-evil t
      message-sendmail-extra-arguments '("--read-envelope-from"))

;;; mailpin.el ends here
