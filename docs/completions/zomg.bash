# bash completion for zomg, generated from zomg's command definitions by `zomg completion bash`; do not edit
_zomg_workspace_dirs() {
    local ws IFS=$'\n'
    ws="$(env ZOMG_TELEMETRY=off zomg box show --workspace -- "$1" 2>/dev/null)"
    [[ -n $ws && -d $ws ]] || { COMPREPLY=(); return 0; }
    compopt -o nospace 2>/dev/null
    COMPREPLY=($(cd -- "$ws" && compgen -d -S / -- "$cur"))
}
_zomg() {
    local -a words=()
    local w i
    for ((i = 0; i <= COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        if (( i > 1 )) && [[ $w == = || ${COMP_WORDS[i-1]} == = ]]; then
            words[${#words[@]}-1]+="$w"
        else
            words+=("$w")
        fi
    done
    local n=$((${#words[@]} - 1)) path="" npos=0 expect="" dashdash=-1
    local -a pos=()
    local cur="${words[n]}" prefix=""
    for ((i = 1; i < n; i++)); do
        w="${words[i]}"
        if [[ -n $expect ]]; then expect=""; continue; fi
        if [[ $w == -- ]]; then dashdash=$i; break; fi
        case "$w" in
            --*=*) continue ;;
            -*) case "$path|$w" in
                "box create|--project"|"box create|--env"|"box list|--project"|"box edit|--env"|"box edit|--unset-env"|"box edit|--project"|"exec|--env"|"exec|--workdir"|"console|--shell"|"setup|--boxes-dir"|"setup|--deployment-name"|"setup|--deployment-metrics") expect="$w" ;;
                esac; continue ;;
        esac
        if (( npos == 0 )); then
            case "$path|$w" in
                "|box") path="box"; continue ;;
                "|exec") path="exec"; continue ;;
                "|console") path="console"; continue ;;
                "|setup") path="setup"; continue ;;
                "|telemetry") path="telemetry"; continue ;;
                "|completion") path="completion"; continue ;;
                "|help") path="help"; continue ;;
                "box|create") path="box create"; continue ;;
                "box|list") path="box list"; continue ;;
                "box|show") path="box show"; continue ;;
                "box|edit") path="box edit"; continue ;;
                "box|rename") path="box rename"; continue ;;
                "box|rm") path="box rm"; continue ;;
                "telemetry|status") path="telemetry status"; continue ;;
                "telemetry|on") path="telemetry on"; continue ;;
                "telemetry|off") path="telemetry off"; continue ;;
                "telemetry|log") path="telemetry log"; continue ;;
                "telemetry|reset") path="telemetry reset"; continue ;;
                "telemetry|explain") path="telemetry explain"; continue ;;
                "telemetry|flush") path="telemetry flush"; continue ;;
            esac
        fi
        pos+=("$w")
        npos=$((npos + 1))
    done
    if (( dashdash >= 0 )); then
        case "$path" in
            "exec")
                if (( n == dashdash + 1 )); then COMPREPLY=($(compgen -c -- "$cur"))
                else compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); fi ;;
            *) COMPREPLY=() ;;
        esac
        return 0
    fi
    if [[ -z $expect && $cur == --*=* ]]; then
        expect="${cur%%=*}"
        [[ ${COMP_WORDS[COMP_CWORD]} == "$cur" ]] && prefix="$expect="
        cur="${cur#*=}"
    fi
    if [[ -n $expect ]]; then
        case "$path|$expect" in
        "box create|--project") COMPREPLY=() ;;
        "box create|--env") COMPREPLY=() ;;
        "box list|--project") COMPREPLY=() ;;
        "box edit|--env") COMPREPLY=() ;;
        "box edit|--unset-env") COMPREPLY=() ;;
        "box edit|--project") COMPREPLY=() ;;
        "exec|--env") COMPREPLY=() ;;
        "exec|--workdir") _zomg_workspace_dirs "${pos[0]}" ;;
        "console|--shell") COMPREPLY=($(compgen -c -- "$cur")) ;;
        "setup|--boxes-dir") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
        "setup|--deployment-name") COMPREPLY=() ;;
        "setup|--deployment-metrics") COMPREPLY=($(compgen -W "on off" -- "$cur")) ;;
            *) COMPREPLY=() ;;
        esac
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return 0
    fi
    if [[ $cur == -* ]]; then
        case "$path" in
            "") COMPREPLY=($(compgen -W "--help -h --version" -- "$cur")) ;;
            "box") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "box create") COMPREPLY=($(compgen -W "--help -h --project --env" -- "$cur")) ;;
            "box list") COMPREPLY=($(compgen -W "--help -h --project --json --names" -- "$cur")) ;;
            "box show") COMPREPLY=($(compgen -W "--help -h --json --workspace" -- "$cur")) ;;
            "box edit") COMPREPLY=($(compgen -W "--help -h --env --unset-env --project --no-project" -- "$cur")) ;;
            "box rename") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "box rm") COMPREPLY=($(compgen -W "--help -h --force -f" -- "$cur")) ;;
            "exec") COMPREPLY=($(compgen -W "--help -h --env --workdir --" -- "$cur")) ;;
            "console") COMPREPLY=($(compgen -W "--help -h --shell" -- "$cur")) ;;
            "setup") COMPREPLY=($(compgen -W "--help -h --boxes-dir --deployment-name --deployment-metrics --no-input --show" -- "$cur")) ;;
            "telemetry") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "telemetry status") COMPREPLY=($(compgen -W "--help -h --json" -- "$cur")) ;;
            "telemetry on") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "telemetry off") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "telemetry log") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "telemetry reset") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "telemetry explain") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "telemetry flush") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "completion") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
            "help") COMPREPLY=($(compgen -W "--help -h" -- "$cur")) ;;
        esac
        return 0
    fi
    case "$path|$npos" in
        "|0") COMPREPLY=($(compgen -W "box exec console setup telemetry completion help" -- "$cur")) ;;
        "box|0") COMPREPLY=($(compgen -W "create list show edit rename rm" -- "$cur")) ;;
        "box create|0") COMPREPLY=() ;;
        "box show|0") COMPREPLY=($(compgen -W "$(env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null)" -- "$cur")) ;;
        "box edit|0") COMPREPLY=($(compgen -W "$(env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null)" -- "$cur")) ;;
        "box rename|0") COMPREPLY=($(compgen -W "$(env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null)" -- "$cur")) ;;
        "box rename|1") COMPREPLY=() ;;
        "box rm|"*) COMPREPLY=($(compgen -W "$(env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null)" -- "$cur")) ;;
        "exec|0") COMPREPLY=($(compgen -W "$(env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null)" -- "$cur")) ;;
        "exec|1") COMPREPLY=($(compgen -W "--" -- "$cur")) ;;
        "console|0") COMPREPLY=($(compgen -W "$(env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null)" -- "$cur")) ;;
        "telemetry|0") COMPREPLY=($(compgen -W "status on off log reset explain flush" -- "$cur")) ;;
        "completion|0") COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
        "help|0") COMPREPLY=($(compgen -W "box exec console setup telemetry completion help" -- "$cur")) ;;
        *) COMPREPLY=() ;;
    esac
}
complete -F _zomg zomg
