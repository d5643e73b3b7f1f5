# bash completion for patchvisor and patchvisor-vmm. CLI11 has none built
# in, so this reads the commands' own --help at completion time: the
# subcommands from "Subcommands:", the options from "Options:" and an
# option's values from its "TEXT:{a,b,c}" choices. New commands and flags
# complete without touching this file. Other arguments complete as files.

# _patchvisor_help COMMAND...: COMMAND's --help, or nothing.
_patchvisor_help() {
    "$@" --help 2>/dev/null
}

# Prints the subcommands (SECTION "Subcommands:") or the option names
# (SECTION "Options:") of a --help text read on standard input.
_patchvisor_section() {
    awk -v wanted="$1" '
        /^[A-Za-z][A-Za-z ]*:$/ { section = $0; next }
        section == wanted && wanted == "Subcommands:" && /^  [a-z]/ { print $1 }
        section == wanted && wanted == "Options:" && /^  -/ {
            count = split($1, names, ",")
            for (i = 1; i <= count; ++i) print names[i]
        }'
}

# Prints OPTION's help line (its name list, a type, maybe {choices}).
_patchvisor_option_line() {
    awk -v option="$1" '/^  -/ {
        count = split($1, names, ",")
        for (i = 1; i <= count; ++i) if (names[i] == option) { print; exit }
    }'
}

_patchvisor() {
    local current=${COMP_WORDS[COMP_CWORD]} previous=${COMP_WORDS[COMP_CWORD - 1]}
    local command=("${COMP_WORDS[0]}") help word index
    help=$(_patchvisor_help "${command[@]}")
    # The subcommand path typed so far: words that name a subcommand of
    # the command before them.
    for ((index = 1; index < COMP_CWORD; ++index)); do
        word=${COMP_WORDS[index]}
        [[ $word == -* ]] && continue
        if _patchvisor_section "Subcommands:" <<<"$help" | grep -qxF -- "$word"; then
            command+=("$word")
            help=$(_patchvisor_help "${command[@]}")
        fi
    done
    COMPREPLY=()
    if [[ $previous == -* ]]; then
        local line choices
        line=$(_patchvisor_option_line "$previous" <<<"$help")
        # An option with a value: "--sandbox TEXT:{auto,jail,microvm}".
        if [[ $line =~ ^\ +[^\ ]+\ +[A-Z] ]]; then
            if [[ $line =~ \{([^}]*)\} ]]; then
                choices=${BASH_REMATCH[1]//,/ }
                mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$current")
            else
                mapfile -t COMPREPLY < <(compgen -f -- "$current")
            fi
            return 0
        fi
    fi
    if [[ $current == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_patchvisor_section "Options:" <<<"$help")" -- "$current")
        return 0
    fi
    local subcommands
    subcommands=$(_patchvisor_section "Subcommands:" <<<"$help")
    if [[ -n $subcommands ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$subcommands" -- "$current")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$current")
    fi
    return 0
}

complete -o filenames -F _patchvisor patchvisor patchvisor-vmm
