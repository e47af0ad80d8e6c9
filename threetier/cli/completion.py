"""`threetier completion bash|zsh|fish`: the shell completion script click writes for this CLI;
no config, no AWS call, nothing but the script on stdout."""
from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from threetier.output import ExitStatus, Output

SHELLS = ("bash", "zsh", "fish")
PROG = "threetier"
# The variable the script sets when it asks for completions: click's default for the prog name,
# which click's main reads (threetier.cli.run passes prog_name="threetier").
COMPLETE_VAR = "_THREETIER_COMPLETE"


@click.command("completion", help="""Print the shell completion script (commands, options, Part names
for `replay`). Load it in the shell's start-up file.

\b
Examples:
  source <(threetier completion bash)       in ~/.bashrc (bash 4.4 or newer)
  source <(threetier completion zsh)        in ~/.zshrc, after compinit
  threetier completion fish > ~/.config/fish/completions/threetier.fish

No AWS call, no credentials or config.yaml needed.
""")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def command(ctx: click.Context, shell: str) -> int:
    out: Output = ctx.find_root().obj
    out.stdout.write(script(ctx.find_root().command, shell))
    out.stdout.flush()
    return ExitStatus.OK


def script(cli: click.Command, shell: str) -> str:
    completion_class = get_completion_class(shell)
    if completion_class is None:  # click.Choice let through only the shells click ships
        raise click.BadParameter(f"no completion for {shell}", param_hint="SHELL")
    source = completion_class(cli, {}, PROG, COMPLETE_VAR).source()
    return source if source.endswith("\n") else source + "\n"
