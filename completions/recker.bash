# bash completion for recker(1), and recker-direct, which takes the same arguments.
# Installed as /usr/share/bash-completion/completions/recker; the options are those of
# Sources/ReckerCLI/Options.swift (`recker --help`), without the two it refuses (--http3,
# --proxy-insecure).

_recker()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n =: || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
    fi

    # Options that take a value, by what the value is.
    local file_opts='-o --output -D --dump-header -T --upload-file --socket --unix-socket
        --cacert -E --cert --key'
    local at_file_opts='-d --data --data-ascii --data-binary --data-urlencode --json -H --header -w --write-out -F --form'
    local free_opts='--data-raw --form-string -u --user -A --user-agent -e --referer
        -m --max-time --connect-timeout --max-redirs --retry --retry-delay --retry-max-time
        --url --resolve --connect-to -x --proxy --noproxy -U --proxy-user'

    # The subcommand: the first word that is neither an option nor an option's value.
    local i w sub='' skip=''
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ -n $skip ]]; then skip=''; continue; fi
        case $w in
            --) break ;;
            -X|--request|--output-dir|-o|--output|-D|--dump-header|-T|--upload-file|--socket|--unix-socket|\
            -d|--data|--data-ascii|--data-binary|--data-urlencode|--data-raw|--json|-H|--header|-w|--write-out|\
            -F|--form|--form-string|-u|--user|-A|--user-agent|-e|--referer|-b|--cookie|-m|--max-time|\
            --connect-timeout|--max-redirs|--retry|--retry-delay|--retry-max-time|--url|-c|--concurrency|\
            --cookie-jar|--cacert|--capath|--resolve|--connect-to|-x|--proxy|--noproxy|-U|--proxy-user|\
            -E|--cert|--key)
                skip=1 ;;
            -*) ;;
            *) sub=$w; break ;;
        esac
    done

    case $prev in
        -X|--request)
            COMPREPLY=($(compgen -W 'GET HEAD POST PUT PATCH DELETE OPTIONS' -- "$cur"))
            return ;;
        --output-dir|--capath)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        -b|--cookie)
            # 'NAME=VALUE; ...' is typed; without '=' the value names a cookie file.
            [[ $cur != *=* && $sub != batch ]] && COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -c|--cookie-jar|--concurrency)
            # -c N is batch's concurrency; elsewhere -c FILE is the cookie jar (- for stdout).
            [[ $sub != batch && $prev != --concurrency ]] && COMPREPLY=($(compgen -f -- "$cur") $(compgen -W '-' -- "$cur"))
            return ;;
        -H|--header)
            if [[ $cur == @* ]]; then
                COMPREPLY=($(compgen -f -P @ -- "${cur#@}"))
            else
                local IFS=$'\n'
                COMPREPLY=($(compgen -W 'Accept: 
Authorization: 
Cache-Control: 
Content-Type: 
Cookie: 
Host: 
Idempotency-Key: 
If-None-Match: 
Range: 
User-Agent: ' -- "$cur"))
                compopt -o nospace 2>/dev/null
            fi
            return ;;
    esac
    # `stats --json` is the format, not --json DATA.
    [[ $prev == --json && $sub == stats ]] && prev=stats
    
    if [[ " $file_opts " == *" $prev "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ " $at_file_opts " == *" $prev "* ]]; then
        # @FILE reads a file (@- standard input); -F NAME=@FILE and NAME=<FILE too.
        if [[ $cur == @* ]]; then
            COMPREPLY=($(compgen -f -P @ -- "${cur#@}"))
        elif [[ $cur == *=[@\<]* ]]; then
            local head=${cur%%=[@<]*} rest=${cur#*=}
            COMPREPLY=($(compgen -f -P "$head=${rest:0:1}" -- "${rest:1}"))
        fi
        return
    fi
    [[ " ${free_opts//$'\n'/ } " == *" $prev "* ]] && return

    case $sub in
        stats)
            COMPREPLY=($(compgen -W '--json --prometheus --socket -s --silent -S --show-error' -- "$cur"))
            return ;;
        batch)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W '-c --concurrency -H --header -f --fail --output-dir -m --max-time
                    --connect-timeout -L --location --max-redirs --compressed -s --silent -S --show-error
                    --socket --fallback -u --user -A --user-agent -e --referer -b --cookie' -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur") $(compgen -W '-' -- "$cur"))
            fi
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-X --request -H --header -d --data --data-ascii --data-binary --data-raw
            --data-urlencode --json -F --form --form-string -G --get -T --upload-file -u --user
            -A --user-agent -e --referer -b --cookie -o --output -O --remote-name --remote-name-all
            --output-dir -D --dump-header -i --include -I --head -v --verbose -s --silent
            -S --show-error -f --fail --fail-with-body -L --location --max-redirs --compressed
            --connect-timeout -m --max-time --retry --retry-delay --retry-max-time
            --retry-connrefused -w --write-out --socket --fallback -g --globoff --url
            -c --cookie-jar -j --junk-session-cookies --unix-socket -k --insecure --cacert --capath
            --resolve --connect-to -x --proxy --noproxy -U --proxy-user -0 --http1.0 --http1.1 --http2
            --http2-prior-knowledge -E --cert --key -4 --ipv4 -6 --ipv6
            --no-progress-meter -N --no-buffer -V --version -h --help' -- "$cur"))
    elif [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W 'stats batch http:// https://' -- "$cur"))
        [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *:// ]] && compopt -o nospace 2>/dev/null
    fi
} &&
    complete -F _recker recker recker-direct

# ex: filetype=sh
