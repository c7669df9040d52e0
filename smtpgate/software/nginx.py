"""nginx mail proxy: greets "<server_name> ESMTP ready", so only the process tells it apart."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

NGINX = Mta(
    id="nginx",
    name="nginx mail proxy",
    banners=(),
    processes=patterns(r"^nginx: (?:master|worker) process\b", r"^(?:\S*/)?nginx(?:\s|$)"),
    packages=("libnginx-mod-mail", "nginx-mod-mail"),
    units=("nginx",),
    binaries=("/usr/lib/nginx/modules/ngx_mail_module.so", "/usr/lib64/nginx/modules/ngx_mail_module.so"),
    starts=patterns(r"(?:^|[\s/])nginx(?:\s|$)"),
    needs_smtp_config=True,
    listen_setting=(
        "`listen` in each `server { protocol smtp; }` block of the `mail { }` context "
        "(/etc/nginx/nginx.conf or a file it includes)"
    ),
    fix=(
        "Bind to loopback: write the listener as `listen 127.0.0.1:25;` (and `listen [::1]:25;`) "
        "in every `server` block inside `mail { }`, then `nginx -t && nginx -s reload`",
        "Or, if the image needs no mail proxy, remove the `mail { }` block and the "
        "`load_module modules/ngx_mail_module.so;` line (Debian: the libnginx-mod-mail package)",
    ),
    verify=(
        "`nginx -T | grep -A30 '^mail'` shows only 127.0.0.1 / [::1] `listen` lines",
        ss_check("25,465,587"),
        RERUN,
    ),
)
