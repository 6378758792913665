# bash completion for zomg, generated from zomg's command definitions by `zomg completion bash`; do not edit
_zomg() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local path="" w i npos=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        [[ $w == -- ]] && return 0
        case "$path|$w" in
            "|box") path="box"; continue ;;
            "|exec") path="exec"; continue ;;
            "|console") path="console"; continue ;;
            "|setup") path="setup"; continue ;;
            "|telemetry") path="telemetry"; continue ;;
            "|completion") path="completion"; continue ;;
            "box|create") path="box create"; continue ;;
            "box|list") path="box list"; continue ;;
            "box|show") path="box show"; continue ;;
            "box|rm") path="box rm"; continue ;;
            "telemetry|status") path="telemetry status"; continue ;;
            "telemetry|on") path="telemetry on"; continue ;;
            "telemetry|off") path="telemetry off"; continue ;;
            "telemetry|log") path="telemetry log"; continue ;;
            "telemetry|explain") path="telemetry explain"; continue ;;
            "telemetry|flush") path="telemetry flush"; continue ;;
        esac
        [[ $w != -* ]] && case "$prev" in
            --boxes-dir|--deployment-metrics|--deployment-name|--env|--project|--shell|--workdir) ;;
            *) npos=$((npos + 1)) ;;
        esac
    done
    case "$prev" in
        --shell) COMPREPLY=($(compgen -c -- "$cur")); return 0 ;;
        --boxes-dir|--deployment-metrics|--deployment-name|--env|--project|--shell|--workdir) return 0 ;;
    esac
    local words=""
    case "$path" in
        "") words="box exec console setup telemetry completion --help -h --version" ;;
        "box") words="create list show rm --help -h" ;;
        "box create") words="--help -h --project --env"; [[ $npos -eq 0 && $cur != -* ]] && words="$words $(env ZOMG_TELEMETRY=off zomg box list 2>/dev/null | tail -n +2 | cut -d" " -f1)" ;;
        "box list") words="--help -h --project --json" ;;
        "box show") words="--help -h --json"; [[ $npos -eq 0 && $cur != -* ]] && words="$words $(env ZOMG_TELEMETRY=off zomg box list 2>/dev/null | tail -n +2 | cut -d" " -f1)" ;;
        "box rm") words="--help -h --force -f"; [[ $npos -eq 0 && $cur != -* ]] && words="$words $(env ZOMG_TELEMETRY=off zomg box list 2>/dev/null | tail -n +2 | cut -d" " -f1)" ;;
        "exec") words="--help -h --env --workdir"; [[ $npos -eq 0 && $cur != -* ]] && words="$words $(env ZOMG_TELEMETRY=off zomg box list 2>/dev/null | tail -n +2 | cut -d" " -f1)" ;;
        "console") words="--help -h --shell"; [[ $npos -eq 0 && $cur != -* ]] && words="$words $(env ZOMG_TELEMETRY=off zomg box list 2>/dev/null | tail -n +2 | cut -d" " -f1)" ;;
        "setup") words="--help -h --boxes-dir --deployment-name --deployment-metrics --no-input --show" ;;
        "telemetry") words="status on off log explain flush --help -h" ;;
        "telemetry status") words="--help -h --json" ;;
        "telemetry on") words="--help -h" ;;
        "telemetry off") words="--help -h" ;;
        "telemetry log") words="--help -h" ;;
        "telemetry explain") words="--help -h" ;;
        "telemetry flush") words="--help -h" ;;
        "completion") words="--help -h"; [[ $npos -eq 0 ]] && words="$words bash zsh fish" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _zomg zomg
